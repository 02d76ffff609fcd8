from django.dispatch import Signal

#: Sent while a device report is written. Receivers (apps of the interfaces
#: layer, which this app may not import: the site file) return a mapping of
#: file name to text that the report then holds.
device_report_collecting = Signal()
