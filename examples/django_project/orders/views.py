from django.http import Http404, JsonResponse

from orders.tasks import flow


def create_quote(request, sku: str) -> JsonResponse:
    try:
        return JsonResponse(flow.quote(sku, int(request.GET.get("qty", 1))))
    except KeyError as exc:  # the step's own exception, re-raised here
        raise Http404(str(exc)) from exc


def health(request) -> JsonResponse:
    return JsonResponse({"ok": True})
