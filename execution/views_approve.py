"""Approving a held round from the pages: a confirmation page (GET), then the approval (POST, CSRF)."""

from decimal import Decimal

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _

from .models import Order, Round
from .services import admin_actions

APPROVE_PERMISSION = "execution.change_round"  # the same permission the admin action asks for


def _next_url(request, round_: Round) -> str:
    wanted = request.POST.get("next") or request.GET.get("next") or ""
    if wanted and url_has_allowed_host_and_scheme(wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return wanted
    return reverse("execution:round-detail", args=[round_.pk])


def _planned_lines(round_: Round) -> tuple[list[dict], Decimal]:
    sides = dict(Order.Side.choices)
    lines, total = [], Decimal(0)
    for line in round_.planned or []:
        if not isinstance(line, dict):
            continue
        try:
            limit, volume = Decimal(str(line.get("limit_price"))), int(line.get("volume") or 0)
        except (ArithmeticError, ValueError, TypeError):
            limit, volume = None, 0
        value = limit * volume if limit is not None else None
        total += value or 0
        lines.append({**line, "side_label": sides.get(line.get("side"), line.get("side")), "value": value, "limit_price": limit})
    return lines, total


@login_required
def round_approve(request, pk: int):
    if not (request.user.is_staff and request.user.has_perm(APPROVE_PERMISSION)):
        raise PermissionDenied
    round_ = get_object_or_404(Round.objects.select_related("account", "approved_by"), pk=pk)
    next_url = _next_url(request, round_)
    if request.method == "POST" and request.POST.get("confirm") == "yes":
        try:
            admin_actions.held_round_approve(round_=round_, user=request.user)
        except admin_actions.ActionRefused as exc:
            messages.error(request, str(exc))
        else:
            messages.success(
                request,
                _("Round #%(id)s of %(account)s approved; the worker re-plans and places it.")
                % {"id": round_.pk, "account": round_.account.name},
            )
        return redirect(next_url)
    planned, total = _planned_lines(round_)
    return render(
        request,
        "execution/round_approve_confirm.html",
        {
            "round": round_,
            "problem": admin_actions.round_approval_problem(round_=round_),
            "planned": planned,
            "planned_total": total,
            "next": next_url,
        },
    )
