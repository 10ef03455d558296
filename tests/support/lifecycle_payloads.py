"""WhatsApp lifecycle payloads (issue 25), written from Meta's documented shapes; each builder names its source.

The envelope is the `whatsapp_business_account` object of every Cloud API webhook (as in ../fixtures/wa_text.json).
Identities: a phone number (`from` / `contacts[].wa_id`) or, since 2026, a business-scoped user id
(`from_user_id` / `contacts[].user_id`) with no phone number at all.
"""

from __future__ import annotations

import time
from typing import Any

WABA = "102290129340398"
METADATA = {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"}


def now() -> str:
    return str(int(time.time()))


def envelope(field: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"object": "whatsapp_business_account",
            "entry": [{"id": WABA, "changes": [{"field": field, "value": {"messaging_product": "whatsapp",
                                                                         "metadata": METADATA, **value}}]}]}


def sender(wa_id: str | None, user_id: str | None) -> dict[str, str]:
    """A message's sender fields: `from` and/or `from_user_id`."""
    return {k: v for k, v in (("from", wa_id), ("from_user_id", user_id)) if v}


def contact(wa_id: str | None, user_id: str | None, name: str = "Sheena Nelson") -> dict[str, Any]:
    return {"profile": {"name": name}, **{k: v for k, v in (("wa_id", wa_id), ("user_id", user_id)) if v}}


def message(wa_id: str | None, user_id: str | None, wamid: str, kind: str, **body: Any) -> dict[str, Any]:
    """A `messages` delivery with one message of `kind` from the learner."""
    return envelope("messages", {"contacts": [contact(wa_id, user_id)], "messages": [
        {**sender(wa_id, user_id), "id": wamid, "timestamp": now(), "type": kind, **body}]})


def text(wa_id: str | None, user_id: str | None, wamid: str, words: str) -> dict[str, Any]:
    return message(wa_id, user_id, wamid, "text", text={"body": words})


def changed_number(old: str, new: str, wamid: str, *, legacy: bool = False,
                   previous_user_id: str | None = None, user_id: str | None = None) -> dict[str, Any]:
    """Meta, "System messages webhook reference" (webhooks/reference/messages/system): `type: system`,
    `system.type: user_changed_number`, the new number in `system.wa_id`, and no `contacts` array. Since the
    2026-08-11 changelog the regenerated business-scoped id comes too (`user_id`, `previous_user_id`).
    `legacy`: the API v11 / On-Premises name of the new number, `new_wa_id`."""
    system: dict[str, Any] = {"body": f"User Sheena Nelson changed from {old} to {new}",
                              ("new_wa_id" if legacy else "wa_id"): new, "type": "user_changed_number"}
    system.update({k: v for k, v in (("user_id", user_id), ("previous_user_id", previous_user_id)) if v})
    return envelope("messages", {"messages": [
        {"from": old, "id": wamid, "timestamp": now(), "type": "system", "system": system}]})


def changed_user_id(old: str, new: str, wamid: str) -> dict[str, Any]:
    """Meta changelog 2026-08-11: `system.type: user_changed_user_id` when only the business-scoped id
    changes (no phone number can be shared): the new id in `user_id`, the old in `previous_user_id`."""
    return envelope("messages", {"messages": [
        {"from_user_id": new, "id": wamid, "timestamp": now(), "type": "system",
         "system": {"body": "User changed their user id", "type": "user_changed_user_id", "user_id": new,
                    "previous_user_id": old}}]})


def identity_changed(wa_id: str | None, user_id: str | None, wamid: str) -> dict[str, Any]:
    """The identity-change system message (Cloud API messages object, `system.type:
    customer_identity_changed` with the new `identity` hash; typed the same way by whatsapp-api-js's
    ServerSystemMessage): the user reinstalled WhatsApp or changed phones."""
    return envelope("messages", {"messages": [
        {**sender(wa_id, user_id), "id": wamid, "timestamp": now(), "type": "system",
         "system": {"body": "User's security code changed", "identity": "c7a9bd56d29d5d3a",
                    "type": "customer_identity_changed", "customer": wa_id or user_id}}]})


def unsupported(wa_id: str | None, user_id: str | None, wamid: str) -> dict[str, Any]:
    """Meta, "Unsupported messages webhook reference": `type: unsupported` with `unsupported.type` and a
    message-level `errors` array (131051, message type unknown)."""
    return message(wa_id, user_id, wamid, "unsupported", unsupported={"type": "edit"},
                   errors=[{"code": 131051, "title": "Message type unknown", "message": "Message type unknown",
                            "error_data": {"details": "Message type is currently not supported."}}])


def unreadable_interactive(wa_id: str | None, user_id: str | None, wamid: str) -> dict[str, Any]:
    """An `interactive` message carrying a message-level error instead of a reply (the messages object's
    `errors` field, code 131000) and no `button_reply` or `list_reply`."""
    return message(wa_id, user_id, wamid, "interactive", interactive={"type": "nfm_reply"},
                   errors=[{"code": 131000, "title": "Something went wrong", "message": "Something went wrong",
                            "error_data": {"details": "Message failed to send because of an unknown error."}}])


def marketing_preference(wa_id: str | None, user_id: str | None, value: str) -> dict[str, Any]:
    """Meta, "user_preferences webhook reference": field `user_preferences`, one entry per change with
    `category: marketing_messages` and `value` stop or resume."""
    detail = "User requested to stop marketing messages" if value == "stop" else \
        "User requested to resume marketing messages"
    return envelope("user_preferences", {"contacts": [contact(wa_id, user_id)], "user_preferences": [
        {**{k: v for k, v in (("wa_id", wa_id), ("user_id", user_id)) if v}, "detail": detail,
         "category": "marketing_messages", "value": value, "timestamp": int(time.time())}]})


def edit(wa_id: str | None, user_id: str | None, wamid: str, original: str, words: str) -> dict[str, Any]:
    """Meta, "Edit messages webhook reference" (webhooks/reference/messages/edit): `type: edit`,
    `edit.original_message_id` and `edit.message`, the new version with its own `type` and content."""
    return message(wa_id, user_id, wamid, "edit", edit={"original_message_id": original,
                                                        "message": {"type": "text", "text": {"body": words}}})


def revoke(wa_id: str | None, user_id: str | None, wamid: str, original: str) -> dict[str, Any]:
    """Meta, "Revoke messages webhook reference" (webhooks/reference/messages/revoke): `type: revoke`,
    `revoke.original_message_id`."""
    return message(wa_id, user_id, wamid, "revoke", revoke={"original_message_id": original})


def account_envelope(field: str, value: dict[str, Any]) -> dict[str, Any]:
    """Business-account fields carry no `messaging_product` or `metadata`, and an entry `time`."""
    return {"object": "whatsapp_business_account",
            "entry": [{"id": WABA, "time": int(time.time()), "changes": [{"field": field, "value": value}]}]}


def template_status(name: str, language: str, event: str, reason: str = "NONE") -> dict[str, Any]:
    """Meta, "message_template_status_update webhook reference": `event` APPROVED, REJECTED, PAUSED, DISABLED, …"""
    return account_envelope("message_template_status_update", {
        "event": event, "message_template_id": 1234567890, "message_template_name": name,
        "message_template_language": language, "reason": reason, "message_template_category": "UTILITY"})


def template_quality(name: str, language: str, new: str, previous: str = "GREEN") -> dict[str, Any]:
    """Meta, "message_template_quality_update webhook reference"."""
    return account_envelope("message_template_quality_update", {
        "previous_quality_score": previous, "new_quality_score": new, "message_template_id": 1234567890,
        "message_template_name": name, "message_template_language": language})


def template_category(name: str, language: str, new: str, previous: str = "UTILITY") -> dict[str, Any]:
    """Meta, "template_category_update webhook reference" (a completed change: previous and new category)."""
    return account_envelope("template_category_update", {
        "message_template_id": 1234567890, "message_template_name": name, "message_template_language": language,
        "previous_category": previous, "new_category": new})


def account_update(event: str) -> dict[str, Any]:
    """Meta, "account_update webhook reference": `event` with `restriction_info` (restrictions) or
    `violation_info` (violations)."""
    value: dict[str, Any] = {"phone_number": "15550783881", "event": event}
    if event == "ACCOUNT_RESTRICTION":
        value["restriction_info"] = [{"restriction_type": "RESTRICTED_BIZ_INITIATED_MESSAGING",
                                      "expiration": 1767225600}]
    if event == "ACCOUNT_VIOLATION":
        value["violation_info"] = {"violation_type": "SCAM"}
    return account_envelope("account_update", value)


def call(wa_id: str | None, user_id: str | None, call_id: str, event: str = "connect",
         direction: str = "USER_INITIATED") -> dict[str, Any]:
    """Meta, Cloud API Calling, "calls" webhook field: `calls[]` with the `wacid.` id, `event` connect (with
    the SDP offer in `session`) or terminate, and `direction` USER_INITIATED for a call to the business."""
    entry: dict[str, Any] = {**sender(wa_id, user_id), "id": call_id, "to": "15550783881", "event": event,
                             "timestamp": now(), "direction": direction}
    if event == "connect":
        entry["session"] = {"sdp_type": "offer", "sdp": "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\n"}
    else:
        entry.update(status="FAILED", duration=0)
    return envelope("calls", {"contacts": [contact(wa_id, user_id)], "calls": [entry]})
