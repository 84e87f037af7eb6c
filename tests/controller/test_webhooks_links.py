"""Issue 7, point 6 end to end: the helpdesk gets a link with recording.completed, then recording.cut and
recording.deleted; the link it holds serves the audio as it stands, then nothing (404)."""

import dataclasses
import io

import numpy as np
import soundfile
from click.testing import CliRunner

from controller import audit, outbox
from controller.cli import cli
from controller.helpdesk import CallFacts, Endpoint, HelpdeskSettings
from controller.index import Index
from controller.webhooks import HelpdeskService
from media import MediaStore
from tests.controller.helpdesk_receiver import HelpdeskReceiver, http_get

SECRET = "s3cret-for-tests-0123456789"
RATE_HZ = 8000
FACTS = CallFacts("call-1", "+4930123456789", "+4940999", agent="1001", process="de")


def emit(index, settings, service, event_type, **data):
    with index.transaction(event_type) as db:
        outbox.emit(db, settings, event_type, FACTS, recording_id="rec-1", data=data)
    service.wake()


def audio_seconds(port, path_and_query):
    status, _, body = http_get(port, path_and_query)
    if status != 200:
        return status, None
    data, rate_hz = soundfile.read(io.BytesIO(body), dtype="int16")
    return status, len(data) / rate_hz


def test_cut_and_delete_reach_the_helpdesk_and_the_link_follows(tmp_path):
    receiver = HelpdeskReceiver(SECRET).start()
    store = MediaStore(tmp_path / "recordings")
    recording = store.create("rec-1", rate_hz=RATE_HZ, channels=2)
    recording.append(np.zeros((4 * RATE_HZ, 2), dtype=np.int16))
    recording.finish()
    settings = HelpdeskSettings(secret=SECRET, mask_numbers="last4", links_listen=("127.0.0.1", 0),
                                poll_interval_s=0.05, endpoints=(Endpoint("desk", receiver.url),))
    with Index(tmp_path / "consentline.db") as index:
        service = HelpdeskService(index, settings, tmp_path / "recordings").start()
        try:
            port = service.link_server.address[1]
            settings = dataclasses.replace(settings, public_base_url=f"http://127.0.0.1:{port}")
            emit(index, settings, service, "recording.completed", duration_s=4.0, tags=["complaint"])
            receiver.wait_until(lambda: len(receiver.accepted) == 1)
            completed = receiver.accepted[0].json
            assert completed["caller"] == "+*********6789" and completed["data"]["tags"] == ["complaint"]
            link = completed["data"]["link"]["url"].removeprefix(f"http://127.0.0.1:{port}")
            assert audio_seconds(port, link) == (200, 4.0)

            store.open("rec-1").cut(0, RATE_HZ, actor="agent:1001", reason="card number")
            emit(index, settings, service, "recording.cut", start_sample=0, end_sample=RATE_HZ)
            receiver.wait_until(lambda: len(receiver.accepted) == 2)
            assert audio_seconds(port, link) == (200, 3.0)  # the cut second is not served any more

            store.delete("rec-1", actor="user:anna", reason="caller asked")
            emit(index, settings, service, "recording.deleted", reason="caller asked")
            receiver.wait_until(lambda: len(receiver.accepted) == 3)
            assert audio_seconds(port, link) == (404, None)
        finally:
            service.stop()
            receiver.down()
        assert [r.json["type"] for r in receiver.accepted] == ["recording.completed", "recording.cut",
                                                               "recording.deleted"]
        assert all(r.signature_ok for r in receiver.accepted)
        assert [row["details"]["status"] for row in audit.entries(index, recording_id="rec-1")] == [200, 200, 404]
    listed = CliRunner().invoke(cli, ["webhooks", "list", "--data", str(tmp_path)])
    assert listed.exit_code == 0 and listed.stdout.count("delivered") == 3
