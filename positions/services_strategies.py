"""Writes for strategies: look one up by its exact name, create it race-safely on first use."""

from django.db import IntegrityError, transaction

from .models import ApiClient, Strategy, exact_key


def strategy_get(*, name: str) -> Strategy | None:
    return Strategy.objects.filter(name_key=exact_key(name)).first()


def strategy_get_or_create(*, name: str, created_by: ApiClient | None = None) -> tuple[Strategy, bool]:
    """Race-safe: parallel first uploads of one new name end with one row and no error."""
    strategy = strategy_get(name=name)
    if strategy is not None:
        return strategy, False
    try:
        with transaction.atomic():
            return Strategy.objects.create(name=name, created_by=created_by), True
    except IntegrityError:
        # Another request created it between our read and insert.
        return Strategy.objects.get(name_key=exact_key(name)), False
