"""German opt-in through the emulator, the controller, the media store and the index."""

DE_CALL = {"caller": "+4915112345678", "dialed": "+4930100100", "caller_audio": "marker",
           "agent": {"extension": "1001", "answer_after_s": 1, "audio": "marker"}}


def call(id_, digits=None, at_s=4.0, hangup_at_s=20):
    spec = dict(DE_CALL, id=id_, hangup={"by": "caller", "at_s": hangup_at_s})
    if digits:
        spec["caller_dtmf"] = [{"at_s": at_s, "digits": digits}]
    return spec


def test_caller_who_agrees_is_recorded(system):
    summary = system.run_calls([call("yes", "1")])
    uuid = summary["yes"]["uuid"]
    row = system.index.call(uuid)
    assert row["consent_outcome"] == "agreed"
    recordings = system.index.recordings()
    assert [r["state"] for r in recordings] == ["completed"]
    assert recordings[0]["duration_s"] > 5


def test_caller_who_declines_has_no_audio_anywhere(system):
    summary = system.run_calls([call("no", "2")])
    row = system.index.call(summary["no"]["uuid"])
    assert row["consent_outcome"] == "declined"
    assert system.index.recordings() == []
    assert system.audio_files() == []
