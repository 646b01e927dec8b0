"""Follow-up hooks run when a received study is complete.

DICOM has no "end of study" message for C-STORE (PS3.4 Annex B), so completeness is
inferred the way Orthanc's *StableAge* does: no new instance of the study for a
quiet period. :class:`StudyCompletionTracker` keeps that clock; hooks are named
callables in a registry so the listener configuration can name them
(``oncohybrid listen --on-complete NAME``). Other packages add hooks through the
``oncohybrid.study_hooks`` entry-point group or :func:`register_study_hook`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points

from oncohybrid.errors import InputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StudyCompleted:
    """A study that received no new instance for the quiet period."""

    study_instance_uid: str
    instances: int  # instances received in this burst (new + duplicates)
    new_instances: int
    calling_ae_titles: tuple[str, ...]
    first_received_s: float  # time.time() of the first/last instance of the burst
    last_received_s: float


StudyHook = Callable[[StudyCompleted], None]

_REGISTRY: dict[str, StudyHook] = {}
_ENTRY_POINT_GROUP = "oncohybrid.study_hooks"


def register_study_hook(name: str, hook: StudyHook | None = None):  # type: ignore[no-untyped-def]
    """Register `hook` under `name` (also usable as a decorator)."""

    def _add(fn: StudyHook) -> StudyHook:
        _REGISTRY[name] = fn
        return fn

    return _add(hook) if hook is not None else _add


def unregister_study_hook(name: str) -> None:
    _REGISTRY.pop(name, None)


def _load_entry_points() -> None:
    for ep in entry_points(group=_ENTRY_POINT_GROUP):
        if ep.name not in _REGISTRY:
            try:
                _REGISTRY[ep.name] = ep.load()
            except Exception:  # a broken plug-in must not stop the listener
                log.exception("study hook entry point %s failed to load", ep.name)


def registered_study_hooks() -> list[str]:
    _load_entry_points()
    return sorted(_REGISTRY)


def resolve_study_hooks(names: Iterable[str]) -> list[StudyHook]:
    """The callables for `names`; unknown names are an input error listing the known ones."""
    _load_entry_points()
    hooks = []
    for name in names:
        if name not in _REGISTRY:
            known = ", ".join(sorted(_REGISTRY)) or "none"
            raise InputError(f"--on-complete {name!r}: no such study hook (registered: {known})")
        hooks.append(_REGISTRY[name])
    return hooks


@register_study_hook("log")
def log_completed_study(event: StudyCompleted) -> None:
    """Built-in hook: one log line per completed study.

    Logs counts and a short hash of the Study Instance UID (UIDs count as identifiers in
    PS3.15 Annex E, so the log carries none); ``oncohybrid ls`` shows the study itself.
    """
    import hashlib

    digest = hashlib.sha256(event.study_instance_uid.encode()).hexdigest()[:12]
    log.info(
        "study complete: uid-sha256 %s (%d instances, %d new, from %s)",
        digest,
        event.instances,
        event.new_instances,
        ", ".join(event.calling_ae_titles) or "?",
    )


@dataclass
class _Burst:
    first_s: float
    last_mono: float
    last_s: float
    instances: int = 0
    new_instances: int = 0
    callers: set[str] = field(default_factory=set)


class StudyCompletionTracker:
    """Fire hooks for studies that saw no new instance for ``quiet_period_s`` seconds.

    ``touch`` is called for every indexed instance; a background thread checks the
    clocks. A study that receives instances again after firing starts a new burst and
    fires again when that burst goes quiet. Hook errors are logged, never raised into
    the receiver.
    """

    def __init__(
        self,
        quiet_period_s: float,
        hooks: Iterable[StudyHook] = (),
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if quiet_period_s <= 0:
            raise InputError(f"quiet period {quiet_period_s} s: must be > 0")
        self.quiet_period_s = float(quiet_period_s)
        self.hooks = list(hooks)
        self._clock = clock
        self._bursts: dict[str, _Burst] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def touch(self, study_uid: str, *, calling_ae: str = "", new: bool = True) -> None:
        now_mono, now_s = self._clock(), time.time()
        with self._lock:
            burst = self._bursts.get(study_uid)
            if burst is None:
                burst = self._bursts[study_uid] = _Burst(now_s, now_mono, now_s)
            burst.last_mono, burst.last_s = now_mono, now_s
            burst.instances += 1
            burst.new_instances += int(new)
            if calling_ae:
                burst.callers.add(calling_ae)

    @property
    def pending(self) -> list[str]:
        with self._lock:
            return list(self._bursts)

    def check(self) -> list[StudyCompleted]:
        """Fire hooks for every quiet study now; return the events fired."""
        now = self._clock()
        with self._lock:
            done = [
                uid for uid, b in self._bursts.items() if now - b.last_mono >= self.quiet_period_s
            ]
            bursts = [(uid, self._bursts.pop(uid)) for uid in done]
        events = [
            StudyCompleted(
                study_instance_uid=uid,
                instances=b.instances,
                new_instances=b.new_instances,
                calling_ae_titles=tuple(sorted(b.callers)),
                first_received_s=b.first_s,
                last_received_s=b.last_s,
            )
            for uid, b in bursts
        ]
        for event in events:
            for hook in self.hooks:
                try:
                    hook(event)
                except Exception:
                    log.exception("study hook %r failed", getattr(hook, "__name__", hook))
        return events

    def start(self) -> None:
        if self._thread is not None:
            return
        interval = min(self.quiet_period_s / 4, 0.5)

        def _run() -> None:
            while not self._stop.wait(interval):
                self.check()

        self._thread = threading.Thread(target=_run, name="study-completion", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
