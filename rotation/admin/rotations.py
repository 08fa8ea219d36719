"""Rotation strategies: created through `rotation_create` (the account subscribes to the rotation's
own target); "Run now" and "Dry run" behind confirmation pages."""

import logging

from django.contrib import admin
from django.db.models import Count
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from execution.admin.base import ConfirmedActionsMixin, _buttons, _pretty_json
from qmtjq import display
from qmtjq.admin_widgets import ReadableFieldsMixin

from ..budget import rotation_budget_use
from ..factorcat import FactorCatError
from ..forms import RotationStrategyForm
from ..models import RotationRun, RotationStrategy, Selection
from ..services import RotationError, rotation_create, rotation_run_now
from ..views import admin_url, decision_rows, next_run, ratio_percent, ratios_effective, schedule_describe
from .base import _local
from .selections import SelectionUploadMixin

logger = logging.getLogger(__name__)


@admin.register(RotationStrategy)
class RotationStrategyAdmin(ReadableFieldsMixin, SelectionUploadMixin, ConfirmedActionsMixin, admin.ModelAdmin):
    ratio_fields = ("take_profit_ratio", "stop_loss_ratio")
    form = RotationStrategyForm
    list_display = [
        "name",
        "account",
        "source",
        "schedule_text",
        "sizing",
        "budget_text",
        "top_n",
        "take_profit_effective",
        "stop_loss_effective",
        "enabled",
        "next_run_at",
    ]
    list_filter = ["enabled", "source", "schedule", "sizing", "account"]
    list_select_related = ["account", "factorcat_account"]
    search_fields = ["name", "factorcat_strategy_name", "account__name"]
    autocomplete_fields = ["account", "factorcat_account"]
    actions = ["run_now", "dry_run"]
    object_actions = ("run_now", "dry_run")
    readonly_fields = [
        "strategy",
        "tools",
        "next_run_at",
        "ratios_effective_text",
        "budget_use_text",
        "parameters_pretty",
        "created_at",
    ]

    def get_fieldsets(self, request, obj=None):
        adding = obj is None
        identity = (
            ["name", "account", "enabled"] if adding else ["name", "account", "strategy", "enabled", "tools"]
        )
        return [
            (None, {"fields": identity}),
            (
                _("Selection source"),
                {
                    "fields": [
                        "source",
                        "factorcat_account",
                        "factorcat_strategy_id",
                        "factorcat_strategy_name",
                        "factorcat_history_id",
                        *([] if adding else ["parameters_pretty"]),
                    ],
                    "description": _(
                        "To follow a Factor Cat backtest record, create the rotation from the record: "
                        "Factor Cat accounts → Browse strategies. Uploaded lists come as CSV (button above) "
                        "or through the API."
                    ),
                },
            ),
            (
                _("Schedule"),
                {
                    "fields": [
                        "schedule",
                        "weekday",
                        "month_day",
                        "run_time",
                        "max_lateness",
                        *([] if adding else ["next_run_at"]),
                    ]
                },
            ),
            (_("Sizing"), {"fields": ["sizing", "amount_per_bond", "top_n", "excluded_codes"]}),
            (
                _("Capital budget"),
                {
                    "fields": ["budget_amount", "budget_share", *([] if adding else ["budget_use_text"])],
                    "description": _(
                        "An amount or a share of total assets, or neither. Required when the account follows "
                        "other strategies too: without it the rotation's runs are refused."
                    ),
                },
            ),
            (
                _("Take-profit / stop-loss"),
                {
                    "fields": [
                        "take_profit_ratio",
                        "stop_loss_ratio",
                        *([] if adding else ["ratios_effective_text"]),
                        "refill_after_tp_sl",
                        "cooldown_days",
                    ]
                },
            ),
            *([] if adding else [(_("Record"), {"fields": ["created_at"]})]),
        ]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return self.readonly_fields
        # Renaming would break the API address; moving to another account would leave the
        # rotation's bonds and subscription behind in the old one.
        return ["name", "account", *self.readonly_fields]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("account", "strategy", "factorcat_account")

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        # A new rotation gets its own target strategy, the account's subscription and an empty target.
        fields = {name: value for name, value in form.cleaned_data.items() if name not in ("name", "account")}
        created = rotation_create(
            name=form.cleaned_data["name"], account=form.cleaned_data["account"], **fields
        )
        for field in self.opts.concrete_fields:
            setattr(obj, field.attname, getattr(created, field.attname))
        obj._state.adding, obj._state.db = False, created._state.db

    # -- columns --

    @admin.display(description=_("capital budget"))
    def budget_text(self, obj):
        if obj.budget_amount is not None:
            return display.money(obj.budget_amount)
        if obj.budget_share is not None:
            return _("%(share)s of total assets") % {"share": ratio_percent(obj.budget_share)}
        return "—"

    @admin.display(description=_("budget use"))
    def budget_use_text(self, obj):
        return render_to_string("rotation/_budget.html", {"budget": rotation_budget_use(rotation=obj)})

    @admin.display(description=_("schedule"), ordering="schedule")
    def schedule_text(self, obj):
        return schedule_describe(obj)

    def _ratio_text(self, override, effective):
        text = ratio_percent(effective)
        if override is None and effective is not None:
            return _("%(ratio)s (from the record)") % {"ratio": text}
        return text

    @admin.display(description=_("take-profit"))
    def take_profit_effective(self, obj):
        return self._ratio_text(obj.take_profit_ratio, ratios_effective(obj)[0])

    @admin.display(description=_("stop-loss"))
    def stop_loss_effective(self, obj):
        return self._ratio_text(obj.stop_loss_ratio, ratios_effective(obj)[1])

    @admin.display(description=_("in effect"))
    def ratios_effective_text(self, obj):
        take_profit, stop_loss = ratios_effective(obj)
        return _("take-profit %(tp)s, stop-loss %(sl)s (profit versus the holding's cost basis)") % {
            "tp": self._ratio_text(obj.take_profit_ratio, take_profit),
            "sl": self._ratio_text(obj.stop_loss_ratio, stop_loss),
        }

    @admin.display(description=_("next run"))
    def next_run_at(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        return _local(next_run(obj, timezone.now()))

    @admin.display(description=_("backtest parameters"))
    def parameters_pretty(self, obj):
        return _pretty_json(obj.factorcat_parameters) if obj and obj.factorcat_parameters else "—"

    @admin.display(description=_("actions"))
    def tools(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        links = [
            (self.object_action_url(obj, "dry_run"), _("Dry run…")),
            (self.object_action_url(obj, "run_now"), _("Run now…")),
            (
                reverse("admin:rotation_rotationstrategy_upload_selection", args=[obj.pk]),
                _("Upload selection (CSV)…"),
            ),
        ]
        if page := admin_url("rotation:rotation-detail", obj.name):
            links.append((page, _("Page")))
        return _buttons(links)

    # -- run now / dry run --

    def _confirm_rows(self, rotations):
        today = timezone.localdate()
        rows = []
        for rotation in rotations:
            selection = (
                Selection.objects.filter(rotation=rotation, trade_date=today)
                .annotate(item_count=Count("items"))
                .order_by("-created_at", "-id")
                .first()
            )
            snapshot = rotation.strategy.current_snapshot
            rows.append(
                {
                    "rotation": rotation,
                    "from_factorcat": rotation.source == RotationStrategy.Source.FACTORCAT,
                    "selection": selection,
                    "target_count": snapshot.positions_count if snapshot else 0,
                    "budget": rotation_budget_use(rotation=rotation),
                }
            )
        return rows

    @admin.action(description=_("Run now (writes the rotation's new target)"), permissions=["change"])
    def run_now(self, request, queryset):
        rotations = list(queryset.select_related("account", "strategy__current_snapshot").order_by("name"))
        if not self.confirmed(request):
            return self.confirm_page(
                request,
                "admin/rotation/rotationstrategy/run_confirm.html",
                action="run_now",
                selected=rotations,
                title=_("Run these rotations now?"),
                rows=self._confirm_rows(rotations),
                dry_run=False,
            )
        results = []
        for rotation in rotations:
            try:
                run, _decision, message = rotation_run_now(rotation=rotation, now=timezone.now())
            except RotationError as exc:
                results.append(
                    {"rotation": rotation, "run": None, "rows": [], "budget": None, "error": str(exc)}
                )
                continue
            self.log_change(request, rotation, f"Run now: {run.status}")
            results.append(
                {
                    "rotation": rotation,
                    "run": run,
                    "rows": decision_rows(run.decision),
                    "budget": None,
                    "error": display.run_message(run) if run.status == RotationRun.Status.FAILED else "",
                }
            )
        return self._results_page(request, results, dry_run=False)

    @admin.action(description=_("Dry run (decide now, write no target)"), permissions=["change"])
    def dry_run(self, request, queryset):
        rotations = list(queryset.select_related("account", "strategy__current_snapshot").order_by("name"))
        if not self.confirmed(request):
            return self.confirm_page(
                request,
                "admin/rotation/rotationstrategy/run_confirm.html",
                action="dry_run",
                selected=rotations,
                title=_("Dry run these rotations?"),
                rows=self._confirm_rows(rotations),
                dry_run=True,
            )
        results = []
        for rotation in rotations:
            try:
                _run, decision, message = rotation_run_now(
                    rotation=rotation, now=timezone.now(), dry_run=True
                )
            except (RotationError, FactorCatError) as exc:
                decision, message = None, str(exc)
            except Exception as exc:  # shown to the user instead of a server error; the log has the rest
                logger.exception("dry run of rotation %s failed", rotation.name)
                decision, message = None, str(exc) or exc.__class__.__name__
            results.append(
                {
                    "rotation": rotation,
                    "run": None,
                    "rows": decision_rows([row.as_dict() for row in decision.rows]) if decision else [],
                    "budget": decision.budget if decision else None,
                    "budget_limit": decision.budget_limit if decision else None,
                    "held_value": decision.held_value if decision else None,
                    "error": message if decision is None else "",
                }
            )
        return self._results_page(request, results, dry_run=True)

    def _results_page(self, request, results, *, dry_run: bool):
        for result in results:
            result["change_url"] = reverse(
                "admin:rotation_rotationstrategy_change", args=[result["rotation"].pk]
            )
            result["run_now_url"] = self.object_action_url(result["rotation"], "run_now")
            run = result["run"]
            result["run_url"] = reverse("admin:rotation_rotationrun_change", args=[run.pk]) if run else None
        return TemplateResponse(
            request,
            "admin/rotation/rotationstrategy/run_result.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": _("Dry run") if dry_run else _("Run now"),
                "results": results,
                "dry_run": dry_run,
            },
        )

    # -- CSV upload --
