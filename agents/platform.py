"""WhatsApp Business Account updates, consumed by the sender agent with the statuses: template status, quality
and category changes and account updates become operator alerts (`charla status`, the dashboard), resolved
when the template is approved again. Each template's latest status is kept, so a practice template that is
not approved is not used (agents.scheduler skips the prompt and records why)."""

from __future__ import annotations

import logging

from charla.core import alerts
from charla.core.events import PlatformNotice
from charla.core.runtime import Resources

log = logging.getLogger(__name__)
# What is fine; anything else of these fields is an alert. Statuses: APPROVED, and back from the archive.
_FINE = {"message_template_status_update": {"APPROVED", "UNARCHIVED"},
         "message_template_quality_update": {"GREEN", "UNKNOWN"},
         "template_category_update": {"UTILITY", "AUTHENTICATION"}}
# Account events that limit or stop messaging (account_update `event`); the others are informational.
_ACCOUNT = {"ACCOUNT_VIOLATION", "ACCOUNT_RESTRICTION", "DISABLED_UPDATE", "ACCOUNT_DELETED", "BAN",
            "PARTNER_REMOVED"}


async def notice(res: Resources, event: PlatformNotice) -> None:
    """Record a template's status and raise (or resolve) the operator alert the update calls for."""
    if event.topic == "message_template_status_update" and event.template and event.language:
        await alerts.template_status(res.redis, event.template, event.language, event.event)
    code, message = _alert(res, event)
    if message is None:
        await alerts.clear(res.redis, code)
        log.info("WhatsApp %s: %s is fine (%s)", event.topic, event.template or "the account", event.event)
    else:
        await alerts.alert(res.redis, code, message)


def _alert(res: Resources, event: PlatformNotice) -> tuple[str, str | None]:
    """The alert's code and text; no text when the update is good news."""
    if event.topic == "account_update":
        return f"account:{event.event}", _account(event) if event.event in _ACCOUNT else None
    name = f"{event.template} ({event.language})"
    code = f"{event.topic.removeprefix('message_').removesuffix('_update')}:{event.template}:{event.language}"
    if event.event in _FINE.get(event.topic, set()):
        return code, None
    detail = event.detail
    if event.topic == "message_template_quality_update":
        text = f"WhatsApp rates template {name} {event.event} (was {detail.get('previous_quality_score')})"
    elif event.topic == "template_category_update":
        text = f"WhatsApp moved template {name} to category {event.event} (was {detail.get('previous_category')})"
    else:
        reason = detail.get("reason")
        text = f"WhatsApp template {name} is {event.event}" + (f": {reason}" if reason and reason != "NONE" else "")
    if event.template == res.settings.practice_template:
        text += " — it is CHARLA_PRACTICE_TEMPLATE: practice outside the 24-hour window is skipped until approved"
    return code, text


def _account(event: PlatformNotice) -> str:
    detail = event.detail
    restrictions = ", ".join(str(r.get("restriction_type")) for r in detail.get("restriction_info") or []
                             if isinstance(r, dict))
    violation = (detail.get("violation_info") or {}).get("violation_type") if isinstance(
        detail.get("violation_info"), dict) else None
    parts = [p for p in (violation, restrictions) if p]
    return f"WhatsApp Business Account update {event.event}" + (f": {'; '.join(parts)}" if parts else "")
