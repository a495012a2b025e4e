"""Playwright helpers over the Pinia plugin's opt-in test hook.

The page opts in with ``createClicktrace({..., testHook: exposeTestHook()})`` (from
``clicktrace-pinia/testing``), which puts ``{commands, flush}`` on ``window.__clicktrace``:
each command's live record (``correlationId``, ``traceparent``, ``status``, ``error``,
``data``) and a flush of the browser's spans. Nothing here scrapes the DOM.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.sync_api import Page

__all__ = ["HOOK", "Outcome", "commands", "flush_spans", "wait_settled"]

HOOK = "__clicktrace"
_NO_HOOK = (
    "window.{hook} is not there: create the plugin with "
    "testHook: exposeTestHook() from 'clicktrace-pinia/testing'"
)

# Resolves to the record once it is no longer pending; `null` keeps Playwright polling.
_SETTLED = """([hook, id, nth]) => {
  const h = window[hook]
  if (!h) return null
  const list = h.commands
  const r = id ? list.find((c) => c.correlationId === id) : list.at(nth ?? -1)
  if (!r || r.status === 'pending') return null
  return {correlationId: r.correlationId, traceparent: r.traceparent, name: r.name,
          status: r.status, error: r.error ?? null, data: r.data ?? null}
}"""


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a command settled, as the page's plugin saw it."""

    correlation_id: str
    status: str  # confirmed | rejected | timed_out
    name: str
    traceparent: str
    error: dict[str, str] | None
    data: Any

    @property
    def trace_id(self) -> str:
        return self.traceparent.split("-")[1]

    @property
    def action_span_id(self) -> str:
        """The browser's action span: the root of the click's trace."""
        return self.traceparent.split("-")[2]

    @property
    def error_code(self) -> str | None:
        return self.error.get("code") if self.error else None


def _require_hook(page: Page, hook: str) -> None:
    if not page.evaluate("(hook) => Boolean(window[hook])", hook):
        raise RuntimeError(_NO_HOOK.format(hook=hook))


def commands(page: Page, hook: str = HOOK) -> list[dict[str, Any]]:
    """The page's command records so far, oldest first."""
    _require_hook(page, hook)
    found: list[dict[str, Any]] = page.evaluate(
        "(hook) => JSON.parse(JSON.stringify(window[hook].commands))", hook
    )
    return found


def wait_settled(
    page: Page,
    correlation_id: str | None = None,
    *,
    nth: int | None = None,
    timeout_ms: float = 15_000,
    hook: str = HOOK,
) -> Outcome:
    """Wait until a command has settled and return its outcome: the command
    ``correlation_id``, else the page's ``nth`` command (0 the first; -1 the latest, the
    default). Ask for ``nth`` after a second click: right after it the latest may still be the
    first command. Raises Playwright's ``TimeoutError`` if it stays pending."""
    _require_hook(page, hook)
    handle = page.wait_for_function(_SETTLED, arg=[hook, correlation_id, nth], timeout=timeout_ms)
    record: dict[str, Any] = handle.json_value()
    return Outcome(
        correlation_id=record["correlationId"],
        status=record["status"],
        name=record["name"],
        traceparent=record["traceparent"],
        error=record["error"],
        data=record["data"],
    )


def flush_spans(page: Page, hook: str = HOOK) -> None:
    """Export the browser's ended spans now (resolves when the export was answered)."""
    _require_hook(page, hook)
    page.evaluate("(hook) => window[hook].flush()", hook)
