"""Claim a key, keep the first answer: one family for retried commands and consumer
idempotency.

One protocol (:class:`Claims`), one class per backend: :class:`MemoryClaims` (one process),
:class:`SqliteClaims` and :class:`PostgresClaims` (claimed in the caller's own transaction:
nothing can be applied twice, even across a crash), :class:`RedisClaims` (shared by nodes,
outside any transaction). The answers kept with a claim: an :class:`Answer` (a command's first
response, see :func:`clicktrace.commands.once`) or an :class:`Outcome` (what a projection
decided, see :mod:`clicktrace.projection`). Memory and Redis claims are also a bus ``Dedupe``;
the outbox's ``ClaimsConfirmation`` reads any of them. See docs/bus.md.
"""

from clicktrace.claims._base import Answer, Claims, Outcome
from clicktrace.claims._memory import MemoryClaims
from clicktrace.claims._postgres import PostgresClaims
from clicktrace.claims._redis import RedisClaims
from clicktrace.claims._sqlite import SqliteClaims

__all__ = [
    "Answer",
    "Claims",
    "MemoryClaims",
    "Outcome",
    "PostgresClaims",
    "RedisClaims",
    "SqliteClaims",
]
