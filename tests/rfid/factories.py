import factory
from factory.django import DjangoModelFactory

from apps.rfid.models import AuthGroup, Card


class AuthGroupFactory(DjangoModelFactory):
    class Meta:
        model = AuthGroup

    name = factory.Sequence(lambda n: f"Group {n}")


class CardFactory(DjangoModelFactory):
    class Meta:
        model = Card
        skip_postgeneration_save = True

    id_tag = factory.Sequence(lambda n: f"04A1{n:06X}")
    comment = ""

    @factory.post_generation
    def groups(self, create, extracted, **kwargs):
        if create and extracted:
            self.groups.set(extracted)
