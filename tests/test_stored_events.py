"""The event store's bytes: what the ledger writes and reads directly is what eventsourcing's own
mapper writes and reads, for every kind of entry, on both backends."""

from __future__ import annotations

from ledger.application import ENTRY_TOPICS, Ledger
from ledger.bodies import Changes
from ledger.bundle import BundleEntry
from ledger.domain import Agreement
from ledger.statement import Entry
from tests.keys import fixed_key
from tests.scenarios import COUNCIL, PCT, PROBATION, REF, line, signed_by_three


def record_every_action(ledger: Ledger) -> None:
    deal = signed_by_three(ledger)
    deal.pay(PCT, "1000.00", "2003-08-01T10:00:00")
    deal.appoint(COUNCIL, fixed_key("salford-council-2"), "2003-09-01T10:00:00")
    deal.vary(PCT, "cut", "2004-05-01T10:00:00", Changes(funding=(line(PCT, "300000.00"),)))
    for partner in (COUNCIL, PROBATION):
        deal.consent(partner, "cut", "2004-05-02T10:00:00")
    deal.notice(PROBATION, "2004-06-01T10:00:00")
    deal.terminate(PROBATION, "2004-12-01T10:00:00")


def test_entries_are_stored_exactly_as_eventsourcing_stores_its_events(ledger: Ledger) -> None:
    record_every_action(ledger)
    rows = [row for row in ledger.recorder.select_notifications(1, 1000)
            if row.topic in ENTRY_TOPICS]
    actions = set()
    for row in rows:
        # Each row was saved through eventsourcing's mapper when the act was recorded.
        state = ledger.decode_state(row)
        event = ledger.mapper.to_domain_event(row)
        assert (state["entry"], state["timestamp"]) == (event.entry, event.timestamp)
        entry = Entry.parse(state["entry"])
        actions.add(entry.statement.action)
        # As an import stores it: a bundle's entry, with where it stands and when.
        direct = ledger.stored_event(BundleEntry.of(0, state["timestamp"], entry, ()))
        assert direct.state == row.state
        assert (direct.originator_id, direct.originator_version, direct.topic) == (
            row.originator_id, row.originator_version, row.topic)
        through_mapper = ledger.mapper.to_stored_event(ledger.entry_event(entry,
                                                                          state["timestamp"]))
        assert through_mapper.state == direct.state
    assert actions == {"draft", "join", "contribute", "sign", "vary", "consent", "notice",
                       "terminate", "appoint"}


def test_a_restored_agreement_is_the_loaded_one(ledger: Ledger) -> None:
    record_every_action(ledger)
    loaded = ledger.agreement(REF)
    restored = ledger.restored(loaded.id)
    assert restored.version == loaded.version
    assert restored.history == loaded.history
    assert restored.state_digest() == loaded.state_digest()
    assert (restored.partners, restored.funding, restored.paid, restored.variations,
            restored.notices, restored.terminated_seq) == (
        loaded.partners, loaded.funding, loaded.paid, loaded.variations, loaded.notices,
        loaded.terminated_seq)


def test_states_are_the_rows_select_notifications_gives(ledger: Ledger) -> None:
    """The log reads the notification log as plain rows; they are eventsourcing's own, with its
    filters and order, from any start, to any stop, of any topics."""
    record_every_action(ledger)
    last = ledger.recorder.max_notification_id()
    assert last is not None
    assert last > 10
    topic_sets: list[tuple[str, ...]] = [(), ENTRY_TOPICS, (Agreement.Drafted.TOPIC,)]
    for topics in topic_sets:
        for start, limit, stop in ((1, 1000, None), (3, 4, None), (2, 1000, last - 2),
                                   (last, 5, None), (last + 1, 5, None), (5, 3, 6)):
            reference = ledger.recorder.select_notifications(start, limit, stop, topics)
            found = ledger.states(start, limit, stop, topics)
            assert [tuple(r) for r in found] == [
                (r.id, r.topic, r.state, r.originator_id.hex, r.originator_version)
                for r in reference]
    assert len(ledger.states(1, 1000, None, ENTRY_TOPICS)) == len(
        ledger.recorder.select_notifications(1, 1000, topics=ENTRY_TOPICS)) > 10
