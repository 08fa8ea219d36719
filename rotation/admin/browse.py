"""Browsing Factor Cat from a Factor Cat account: strategies, backtest records, a rotation from a record."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from execution.admin.base import _pretty_json
from execution.models import BrokerAccount

from ..credentials import with_relogin
from ..factorcat import FactorCatError
from ..forms import RotationFromRecordForm
from ..models import FactorCatAccount, RotationStrategy
from ..services import record_top_n, rotation_create
from ..views import ratio_percent, ratios_effective
from .base import _figure, _form_errors, _page_number, _positive_int

BROWSE_PAGE_SIZE = 20
SEARCH_MAX_CHARS = 100


class FactorCatBrowseMixin:
    """Views of FactorCatAccountAdmin that read Factor Cat's strategies and records."""

    def get_urls(self):
        own = [
            path(
                "<int:pk>/browse/",
                self.admin_site.admin_view(self.browse_strategies_view),
                name="rotation_factorcataccount_browse",
            ),
            path(
                "<int:pk>/browse/<int:strategy_id>/",
                self.admin_site.admin_view(self.browse_histories_view),
                name="rotation_factorcataccount_histories",
            ),
            path(
                "<int:pk>/browse/<int:strategy_id>/<int:history_id>/",
                self.admin_site.admin_view(self.create_rotation_view),
                name="rotation_factorcataccount_create_rotation",
            ),
        ]
        return own + super().get_urls()

    def _browsed_account(self, request, pk) -> FactorCatAccount:
        account = get_object_or_404(FactorCatAccount, pk=pk)
        if not self.has_view_permission(request, account):
            raise PermissionDenied
        return account

    def _factorcat(self, request, account, call):
        """One Factor Cat call (logging in again on a refused token); an error becomes a message and None."""
        try:
            return with_relogin(account, call)
        except FactorCatError as exc:
            self.message_user(request, _("Factor Cat: %(why)s") % {"why": exc}, messages.ERROR)
            return None

    def _browse_context(self, request, account, title, **context):
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "account": account,
            "title": title,
            "browse_url": reverse("admin:rotation_factorcataccount_browse", args=[account.pk]),
            **context,
        }

    def browse_strategies_view(self, request, pk):
        account = self._browsed_account(request, pk)
        search = (request.GET.get("q") or "").strip()[:SEARCH_MAX_CHARS]
        number = _page_number(request)
        page = self._factorcat(
            request,
            account,
            lambda client: client.strategies(page=number, limit=BROWSE_PAGE_SIZE, search=search),
        )
        rows = []
        for item in page.items if page else []:
            strategy_id = _positive_int(item.get("id"))
            name = str(item.get("name") or "")
            rows.append(
                {
                    "id": item.get("id"),
                    "name": name,
                    "description": str(item.get("description") or ""),
                    "backtest_count": item.get("backtest_count"),
                    "created_at": str(item.get("created_at") or ""),
                    "url": reverse(
                        "admin:rotation_factorcataccount_histories", args=[account.pk, strategy_id]
                    )
                    + "?"
                    + urlencode({"name": name})
                    if strategy_id
                    else None,
                }
            )
        return TemplateResponse(
            request,
            "admin/rotation/factorcataccount/browse_strategies.html",
            self._browse_context(
                request,
                account,
                _("Factor Cat strategies (%(account)s)") % {"account": account.name},
                page=page,
                rows=rows,
                search=search,
            ),
        )

    def browse_histories_view(self, request, pk, strategy_id):
        account = self._browsed_account(request, pk)
        strategy_name = (request.GET.get("name") or "").strip()[:200]
        number = _page_number(request)
        page = self._factorcat(
            request,
            account,
            lambda client: client.histories(strategy_id, page=number, limit=BROWSE_PAGE_SIZE),
        )
        rows = []
        for item in page.items if page else []:
            history_id = _positive_int(item.get("id"))
            rows.append(
                {
                    "id": item.get("id"),
                    "backtest_time": str(item.get("backtest_time") or ""),
                    "strategy_return": _figure(item.get("strategy_return")),
                    "win_rate": _figure(item.get("win_rate")),
                    "annualized_return": _figure(item.get("annualized_return")),
                    "max_drawdown": _figure(item.get("max_drawdown")),
                    "sharpe_ratio": _figure(item.get("sharpe_ratio")),
                    "url": reverse(
                        "admin:rotation_factorcataccount_create_rotation",
                        args=[account.pk, strategy_id, history_id],
                    )
                    + "?"
                    + urlencode({"name": strategy_name})
                    if history_id
                    else None,
                }
            )
        return TemplateResponse(
            request,
            "admin/rotation/factorcataccount/browse_histories.html",
            self._browse_context(
                request,
                account,
                _("Backtest records of %(strategy)s") % {"strategy": strategy_name or strategy_id},
                page=page,
                rows=rows,
                strategy_id=strategy_id,
                strategy_name=strategy_name,
            ),
        )

    def create_rotation_view(self, request, pk, strategy_id, history_id):
        account = self._browsed_account(request, pk)
        if not request.user.has_perm("rotation.add_rotationstrategy"):
            raise PermissionDenied
        strategy_name = (request.GET.get("name") or "").strip()[:200]
        # Fetched on every request, so what is stored is the server's, never what the page posted back.
        parameters = self._factorcat(
            request, account, lambda client: client.parameters(strategy_id, history_id)
        )
        top_n = record_top_n(parameters=parameters) if parameters is not None else None
        if request.method == "POST":
            form = RotationFromRecordForm(request.POST, record_top_n=top_n)
            if form.is_valid() and parameters is not None:
                fields = dict(form.cleaned_data)
                name, rotation_account = fields.pop("name"), fields.pop("account")
                try:
                    rotation = rotation_create(
                        name=name,
                        account=rotation_account,
                        source=RotationStrategy.Source.FACTORCAT,
                        factorcat_account=account,
                        factorcat_strategy_id=strategy_id,
                        factorcat_history_id=history_id,
                        factorcat_parameters=parameters,
                        **fields,
                    )
                except ValidationError as exc:
                    _form_errors(form, exc)
                else:
                    self.log_addition(
                        request,
                        rotation,
                        f"Created from Factor Cat strategy {strategy_id}, backtest record {history_id}",
                    )
                    self.message_user(
                        request,
                        _(
                            "Rotation strategy %(name)s created from backtest record %(record)s; "
                            "account %(account)s follows its target."
                        )
                        % {"name": rotation.name, "record": history_id, "account": rotation_account.name},
                        messages.SUCCESS,
                    )
                    return HttpResponseRedirect(
                        reverse("admin:rotation_rotationstrategy_change", args=[rotation.pk])
                    )
        else:
            form = RotationFromRecordForm(
                initial={"factorcat_strategy_name": strategy_name}, record_top_n=top_n
            )
        form.fields["account"].queryset = BrokerAccount.objects.order_by("name")
        take_profit, stop_loss = ratios_effective(RotationStrategy(factorcat_parameters=parameters or {}))
        return TemplateResponse(
            request,
            "admin/rotation/factorcataccount/create_rotation.html",
            self._browse_context(
                request,
                account,
                _("New rotation from backtest record %(record)s") % {"record": history_id},
                form=form,
                strategy_id=strategy_id,
                strategy_name=strategy_name,
                history_id=history_id,
                histories_url=reverse(
                    "admin:rotation_factorcataccount_histories", args=[account.pk, strategy_id]
                )
                + "?"
                + urlencode({"name": strategy_name}),
                parameters=_pretty_json(parameters) if parameters is not None else None,
                take_profit=ratio_percent(take_profit),
                stop_loss=ratio_percent(stop_loss),
                top_n_missing=parameters is not None and form.top_n_missing and not form.is_bound,
            ),
        )
