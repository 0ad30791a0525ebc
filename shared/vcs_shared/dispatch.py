"""A service's event-to-handler table, typed by event.

Each service defines its table once, at import, from plain functions that take
the envelope of the one event they handle and the service's dependencies::

    HANDLERS = HandlerTable[AllocatorDeps]("allocator").on(RequestSubmitted, allocate)

``on`` ties the event class to the handler's parameter type, so mypy refuses a
handler registered for an event it does not take, and handlers need no
``isinstance`` to reach their event. The composition root binds the table to
its dependencies (:meth:`HandlerTable.bind`) and the consumer dispatches through
the result; the events a table handles are what its queue must receive
(:func:`vcs_shared.topology.require_subscribed`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from vcs_shared.envelope import Envelope
from vcs_shared.events import Event

D = TypeVar("D")
E = TypeVar("E", bound=Event)

Handler = Callable[[Envelope[E], D], Awaitable[None]]
"""A handler of one event type ``E``, given the service's dependencies ``D``."""

BoundHandler = Callable[[Envelope[Event]], Awaitable[None]]


@dataclass(frozen=True)  # no slots: ``HandlerTable[Deps](...)`` sets ``__orig_class__``
class HandlerTable(Generic[D]):
    """Which function handles which event, for one service; immutable (``on`` returns a new one)."""

    service: str
    _routes: Mapping[type[Event], Handler[Any, D]] = field(default_factory=dict)

    def on(self, event_type: type[E], handler: Handler[E, D]) -> HandlerTable[D]:
        if event_type in self._routes:
            raise ValueError(f"{self.service} already handles {event_type.name}")
        return HandlerTable(self.service, {**self._routes, event_type: handler})

    @property
    def events(self) -> frozenset[type[Event]]:
        return frozenset(self._routes)

    def bind(self, deps: D) -> Handlers:
        """The table with its dependencies, ready for the consumer."""
        bound = {event_type: _bind(h, deps) for event_type, h in self._routes.items()}
        return Handlers(self.service, bound)


def _bind(handler: Handler[Any, D], deps: D) -> BoundHandler:
    async def bound(envelope: Envelope[Event]) -> None:
        await handler(envelope, deps)

    return bound


@dataclass(frozen=True, slots=True)
class Handlers:
    """A bound handler table: what :class:`vcs_shared.broker.EventConsumer` dispatches through."""

    service: str
    _bound: Mapping[type[Event], BoundHandler]

    @property
    def events(self) -> frozenset[type[Event]]:
        return frozenset(self._bound)

    def handler_for(self, event: Event) -> BoundHandler | None:
        return self._bound.get(type(event))

    def observed(self, observer: Callable[[Event], None]) -> Handlers:
        """The same table, each handler telling ``observer`` about its event once it has been
        handled (the intake wakes the pages that show the request)."""

        def observing(handler: BoundHandler) -> BoundHandler:
            async def handle(envelope: Envelope[Event]) -> None:
                await handler(envelope)
                observer(envelope.event)

            return handle

        return Handlers(self.service, {e: observing(h) for e, h in self._bound.items()})

    def followed_by(self, after: Callable[[Envelope[Event]], Awaitable[None]]) -> Handlers:
        """The same table, ``after`` awaited once each handler has handled its event and before
        the event is acked (the notifier schedules the office's webhook message there, so a
        crash between the two loses nothing: the event comes again)."""

        def following(handler: BoundHandler) -> BoundHandler:
            async def handle(envelope: Envelope[Event]) -> None:
                await handler(envelope)
                await after(envelope)

            return handle

        return Handlers(self.service, {e: following(h) for e, h in self._bound.items()})
