from core.permissions import is_coordinator


def roles(request):
    return {"is_coordinator": is_coordinator(getattr(request, "user", None))}
