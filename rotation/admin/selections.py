"""Selections (and the CSV upload of one), runs and take-profit/stop-loss events: read-only records."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _

from execution.admin.base import ReadOnlyAdminMixin, ReadOnlyInline
from qmtjq import display

from ..forms import SelectionUploadForm
from ..models import RotationRun, RotationStrategy, Selection, SelectionItem, TpSlEvent
from ..services import selection_store
from ..views import decision_rows, ratio_percent
from .base import _decision_table, _snapshot_link


class SelectionUploadMixin:
    """RotationStrategyAdmin's CSV upload of the day's selection."""

    def get_urls(self):
        own = [
            path(
                "<path:object_id>/upload-selection/",
                self.admin_site.admin_view(self.upload_selection_view),
                name="rotation_rotationstrategy_upload_selection",
            )
        ]
        return own + super().get_urls()

    def upload_selection_view(self, request, object_id):
        rotation = self.get_object(request, object_id)
        if rotation is None:
            raise Http404
        if not self.has_change_permission(request, rotation):
            raise PermissionDenied
        from_factorcat = rotation.source == RotationStrategy.Source.FACTORCAT
        if request.method == "POST" and not from_factorcat:
            form = SelectionUploadForm(request.POST, request.FILES)
            if form.is_valid():
                trade_date, bonds = form.cleaned_data["trade_date"], form.cleaned_data["bonds"]
                selection = selection_store(
                    rotation=rotation,
                    trade_date=trade_date,
                    bonds=bonds,
                    source=Selection.Source.CSV,
                    received_from=f"admin:{request.user}",
                )
                self.log_change(
                    request, rotation, f"Uploaded the selection of {trade_date} ({len(bonds)} bonds)"
                )
                self.message_user(
                    request,
                    _("Selection of %(date)s stored: %(count)d bonds.")
                    % {"date": trade_date, "count": len(bonds)},
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:rotation_selection_change", args=[selection.pk]))
        else:
            form = SelectionUploadForm()
        return TemplateResponse(
            request,
            "admin/rotation/rotationstrategy/upload_selection.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": _("Upload the selection of %(name)s") % {"name": rotation.name},
                "rotation": rotation,
                "form": form,
                "from_factorcat": from_factorcat,
            },
        )


# --- read-only records --------------------------------------------------------------------------


class SelectionItemInline(ReadOnlyInline):
    model = SelectionItem
    fields = ["rank", "code", "name", "price"]


@admin.register(Selection)
class SelectionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["trade_date", "rotation", "source", "item_count", "received_from", "created_at"]
    list_filter = ["source", "rotation"]
    list_select_related = ["rotation"]
    search_fields = ["rotation__name", "items__code", "items__name", "received_from"]
    date_hierarchy = "trade_date"
    inlines = [SelectionItemInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(item_count=Count("items"))

    def get_search_results(self, request, queryset, search_term):
        queryset, _may_have_duplicates = super().get_search_results(request, queryset, search_term)
        return queryset.distinct(), False

    @admin.display(description=_("bonds"), ordering="item_count")
    def item_count(self, obj):
        return obj.item_count


@admin.register(RotationRun)
class RotationRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "slot",
        "rotation",
        "trigger",
        "status",
        "actions_summary",
        "message_short",
        "finished_at",
    ]
    list_filter = ["status", "trigger", "rotation"]
    list_select_related = ["rotation"]
    search_fields = ["rotation__name", "message"]
    date_hierarchy = "slot"
    fields = [
        "rotation",
        "slot",
        "trigger",
        "status",
        "selection_link",
        "decision_table",
        "target_link",
        "message_shown",
        "started_at",
        "finished_at",
    ]
    readonly_fields = ["selection_link", "decision_table", "target_link", "message_shown"]

    @admin.display(description=_("decision"))
    def decision_table(self, obj):
        return _decision_table(decision_rows(obj.decision))

    @admin.display(description=_("decision"))
    def actions_summary(self, obj):
        counts = {}
        for row in decision_rows(obj.decision):
            counts[row["action_label"]] = counts.get(row["action_label"], 0) + 1
        return " · ".join(f"{label} {count}" for label, count in counts.items()) or "—"

    @admin.display(description=_("message"))
    def message_short(self, obj):
        return Truncator(display.run_message(obj)).chars(100) or "—"

    @admin.display(description=_("message"))
    def message_shown(self, obj):
        return display.run_message(obj) or "—"

    @admin.display(description=_("selection"))
    def selection_link(self, obj):
        if obj.selection_id is None:
            return "—"
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:rotation_selection_change", args=[obj.selection_id]),
            obj.selection,
        )

    @admin.display(description=_("target written"))
    def target_link(self, obj):
        return _snapshot_link(obj.target_snapshot_id)


@admin.register(TpSlEvent)
class TpSlEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["at", "rotation", "kind", "code", "price", "cost", "profit", "ratio_text", "refill_code"]
    list_filter = ["kind", "rotation"]
    list_select_related = ["rotation"]
    search_fields = ["code", "rotation__name", "refill_code"]
    date_hierarchy = "at"
    readonly_fields = ["profit", "target_link"]

    @admin.display(description=_("profit vs cost"))
    def profit(self, obj):
        if not obj.cost:
            return "—"
        return f"{(obj.price - obj.cost) / obj.cost:+.2%}"

    @admin.display(description=_("ratio"), ordering="ratio")
    def ratio_text(self, obj):
        return ratio_percent(obj.ratio)

    @admin.display(description=_("target written"))
    def target_link(self, obj):
        return _snapshot_link(obj.target_snapshot_id)
