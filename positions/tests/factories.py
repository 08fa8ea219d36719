from decimal import Decimal

import factory

from positions.models import Strategy, TargetLine, TargetSnapshot


class StrategyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Strategy

    name = factory.Sequence(lambda n: f"策略{n}")


class TargetSnapshotFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TargetSnapshot

    strategy = factory.SubFactory(StrategyFactory)
    content_hash = factory.Sequence(lambda n: f"{n:064x}")


class TargetLineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TargetLine

    snapshot = factory.SubFactory(TargetSnapshotFactory)
    code = "600000.SH"
    jq_code = "600000.XSHG"
    volume = 100
    cost = Decimal("10")
