"""The stream job's candles, 24-hour tickers and symbols for one micro-batch.

The batch arrives as one part per symbol and second (jobs.candle_levels.second_parts).
`CandleFolder.fold` builds the batch's part of every kept level, folds each into the
stored part of its window, and returns what to write: the changed parts, a candle row
for every written resolution's window the batch touched, the ticker and the symbols
row of every symbol it had trades of.

The stored parts the driver has read or written are remembered per level, as the
panes are (jobs.panes.KnownPanes): at a steady rate a batch reads from Cassandra only
the slots it knows nothing about, and the ticker's hours and minutes come from memory.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from functools import partial

from jobs.candle_levels import (
    Levels,
    StoredPart,
    SymbolState,
    batch_levels,
    fold_part,
    merged,
)
from jobs.candles import (
    HOUR,
    RESOLUTIONS,
    CandlePart,
    bucket,
    candle_values,
    merge_in_order,
    part_of,
    ticker_layout,
    ticker_values,
)
from jobs.panes import KnownPanes, floor_time
from jobs.stream_store import CandleWrites, StreamStore

log = logging.getLogger("jobs.candle_batch")

Seconds = Mapping[str, Mapping[datetime, CandlePart]]
# (level, symbol) -> window start -> the part as this batch leaves it.
Changed = dict[tuple[str, str], dict[datetime, StoredPart]]


def keep_near_newest(level: str) -> timedelta:
    """How far from the newest second a batch touched the driver keeps a level's slots:
    the ticker's hours for a day and more; two windows, at least two minutes, else."""
    if level == "1h":
        return timedelta(hours=26)
    if level == "1m":
        return 2 * HOUR
    return max(2 * RESOLUTIONS[level], timedelta(minutes=2))


class CandleFolder:
    def __init__(self, levels: Levels, store: StreamStore, topic: str,
                 now: Callable[[], datetime]) -> None:
        self.levels = levels
        self.store = store
        self.topic = topic
        self.now = now
        self._known = {level: KnownPanes(RESOLUTIONS[level], keep_near_newest(level))
                       for level in levels.kept}
        self._run: uuid.UUID | None = None
        # The symbols rows as stored: global, not per run (min/max merges are idempotent).
        self._symbols: dict[str, SymbolState] = {}
        self.rebuilt = 0

    def fold(self, run_id: uuid.UUID, batch_id: int, seconds: Seconds,
             next_offsets: Callable[[], Mapping[int, int]]) -> CandleWrites:
        """What the batch writes. next_offsets gives, per partition, the offset after the
        batch's last record: only asked when a second must be rebuilt from its trades."""
        if run_id != self._run:
            self.clear()
            self._run = run_id
        batch = {symbol: batch_levels(by_second, self.levels)
                 for symbol, by_second in seconds.items() if by_second}
        symbols = self._symbol_states(batch)
        spans = [(level, symbol, start, start + RESOLUTIONS[level])
                 for symbol, by_level in batch.items()
                 for level, parts in by_level.items() for start in parts]
        layouts = {symbol: ticker_layout(state.last_key[0]) for symbol, state in symbols.items()}
        for symbol, layout in layouts.items():
            spans += [("1h", symbol, *layout.hours), ("1m", symbol, *layout.head_minutes),
                      ("1m", symbol, *layout.tail_minutes)]
        self._load(run_id, spans)

        changed: Changed = defaultdict(dict)
        candles, tickers = [], []
        for symbol, by_level in batch.items():
            for level in self.levels.kept:
                length = RESOLUTIONS[level]
                for start, part in sorted(by_level[level].items()):
                    stored = self._stored(level, symbol, start, start + length, changed)
                    old = stored.get(start)
                    new = fold_part(old, part, batch_id, partial(
                        self._rebuild, run_id, level, symbol, start, changed, next_offsets))
                    if new is not old:
                        changed[level, symbol][start] = new
                    if level in self.levels.written:
                        candles.append({"symbol": symbol, "resolution": level,
                                        "bucket": bucket(level, start), "window_start": start,
                                        "window_end": start + length,
                                        **candle_values(new.part)})
            layout = layouts[symbol]
            window = [*self._parts("1m", symbol, layout.head_minutes, changed),
                      *self._parts("1h", symbol, layout.hours, changed),
                      *self._parts("1m", symbol, layout.tail_minutes, changed)]
            whole = merged(window)
            if whole is not None:
                tickers.append({"symbol": symbol, **ticker_values(whole, layout)})
        parts = {(level, symbol, start): part for (level, symbol), by_start in changed.items()
                 for start, part in by_start.items()}
        return CandleWrites(parts=parts, candles=candles, tickers=tickers, symbols=symbols)

    def remember(self, writes: CandleWrites, seconds: Seconds) -> None:
        """Once the writes landed: what the driver now knows, bounded around the batch."""
        by_level: dict[str, dict[tuple[str, datetime], StoredPart]] = defaultdict(dict)
        for (level, symbol, start), stored in writes.parts.items():
            by_level[level][symbol, start] = stored
        for level, parts in by_level.items():
            self._known[level].remember(parts)
        self._symbols.update(writes.symbols)
        newest = max((max(by_second) for by_second in seconds.values() if by_second),
                     default=None)
        if newest is None:
            return
        # The ticker's first minutes, a day back, stay known as well.
        heads = {(floor_time(layout.window_start, HOUR), layout.hours[0])
                 for layout in (ticker_layout(state.last_key[0])
                                for state in writes.symbols.values())}
        for level, known in self._known.items():
            known.forget_far_from(newest, heads if level == "1m" else ())

    def clear(self) -> None:
        """Forget everything: after a failed write, or for another run."""
        for known in self._known.values():
            known.clear()
        self._symbols.clear()

    # --- helpers ---

    def _symbol_states(self, batch: Mapping[str, Mapping[str, Mapping[datetime, CandlePart]]]
                       ) -> dict[str, SymbolState]:
        unknown = [symbol for symbol in batch if symbol not in self._symbols]
        if unknown:
            self._symbols.update(self.store.load_symbols(unknown))
        states = {}
        for symbol, by_level in batch.items():
            seconds = by_level["1s"].values()
            first = min(seconds, key=lambda p: p.first_key)
            last = max(seconds, key=lambda p: p.last_key)
            states[symbol] = SymbolState(first.first_key[0], last.last_key,
                                         last.last_price).merge(self._symbols.get(symbol))
        return states

    def _load(self, run_id: uuid.UUID, spans: Iterable[tuple[str, str, datetime, datetime]]
              ) -> None:
        by_level: dict[str, list[tuple[str, datetime, datetime]]] = defaultdict(list)
        for level, symbol, start, end in spans:
            if start < end:
                by_level[level].append((symbol, start, end))
        unknown = {level: self._known[level].unknown(level_spans)
                   for level, level_spans in by_level.items()}
        wanted = [(level, symbol, start, end) for level, level_spans in unknown.items()
                  for symbol, start, end in level_spans]
        if not wanted:
            return
        loaded = self.store.load_parts(run_id, wanted)
        for level, level_spans in unknown.items():
            self._known[level].learn(level_spans, {
                (symbol, start): part for (part_level, symbol, start), part in loaded.items()
                if part_level == level})

    def _stored(self, level: str, symbol: str, start: datetime, end: datetime,
                changed: Changed) -> dict[datetime, StoredPart]:
        """window start -> part in [start, end): this batch's where it changed one."""
        known = self._known[level]
        parts = known.stored(symbol, [(start, end)])
        # By slot, not by scanning what changed: a drained backlog changes thousands.
        if own := changed.get((level, symbol)):
            parts.update({slot: own[slot] for slot in known.slots(start, end) if slot in own})
        return parts

    def _parts(self, level: str, symbol: str, span: tuple[datetime, datetime],
               changed: Changed) -> list[CandlePart]:
        start, end = span
        if start >= end:
            return []
        stored = self._stored(level, symbol, start, end, changed)
        return [stored[s].part for s in sorted(stored)]

    def _rebuild(self, run_id: uuid.UUID, level: str, symbol: str, start: datetime,
                 changed: Changed,
                 next_offsets: Callable[[], Mapping[int, int]]) -> CandlePart:
        """The part of an interleaved window, this batch included: from its children one
        level down while they live, else from the stored trades the run has read."""
        end = start + RESOLUTIONS[level]
        self.rebuilt += 1
        if self.levels.rebuilt_from_children(level, start, self.now()):
            parent = self.levels.parent(level)
            self._load(run_id, [(parent, symbol, start, end)])
            return merge_in_order(self._parts(parent, symbol, (start, end), changed))
        trades = self.store.load_trades(self.topic, symbol, start, end, next_offsets())
        log.info("rebuilt the %s part of %s at %s from %d stored trades", level, symbol,
                 start.isoformat(), len(trades))
        return part_of(trades)
