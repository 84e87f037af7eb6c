"""The controller's server stopped without drain in the middle of the German menu: the caller still reaches the
agent through the dialplan's fallback, nothing is recorded, and calls that arrive afterwards are not recorded
either (the socket app cannot connect, so the fallback takes them)."""

import gevent

from tests.e2e.choreography import MENU, CallPlan


def test_stop_without_drain_during_the_menu_leaves_calls_unrecorded_and_with_the_agent(system):
    def stop_controller(ctx):
        gevent.spawn(system.controller.server.stop, 0)

    asked = (CallPlan("in-menu", "+4915130000001", "+4930100100")
             .on(MENU, stop_controller, delay_s=1.0)
             .press("1", after=MENU, delay_s=3.0)
             .hangup(after="bridged", delay_s=8.0))
    later = CallPlan("after-stop", "+4915130000002", "+4930100100").hangup(after="bridged", delay_s=8.0)
    later.spec["start_s"] = 3.0
    system.run(asked, later)

    assert system.controller.server.killed_calls == 1
    for plan in (asked, later):
        assert plan.count("bridged") == 1, f"{plan.id} never reached the agent"
        assert plan.count("record_start") == 0
        assert system.audio_of(plan.uuid) == []
    assert "app:stop_record_session" in [name for name, _ in asked.moments], "the fallback path was not taken"
    call = system.index.call(asked.uuid)
    assert call["consent_outcome"] == "error" and "stopped" in call["consent_reason"]
    assert system.index.recordings() == []
    assert system.index.call(later.uuid) is None     # the controller never saw it
