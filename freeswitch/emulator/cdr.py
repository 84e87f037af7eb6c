"""The variables FreeSWITCH sets when a channel hangs up (switch_channel_set_timestamps and friends).

Pure: channel times and cause in, ordered (name, value) pairs out, in the order CHANNEL_HANGUP_COMPLETE shows them.
"""

import time

from freeswitch.emulator.channel import HANGUP_CAUSES


def _stamp(us):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(us // 1_000_000)) if us else ""


def hangup_variables(times, cause, now_us, caller_id_name, caller_id_number, current_app, current_arg,
                     disposition=None):
    cause = cause or "NORMAL_CLEARING"
    start_us = times.get("created", 0)
    answer_us = times.get("answered", 0)
    end_us = times.get("hangup", now_us)
    pairs = [("hangup_cause", cause), ("hangup_cause_q850", str(HANGUP_CAUSES.get(cause, 16))),
             ("digits_dialed", "none"), ("start_stamp", _stamp(start_us)), ("profile_start_stamp", _stamp(start_us))]
    if answer_us:
        pairs.append(("answer_stamp", _stamp(answer_us)))
    pairs.append(("end_stamp", _stamp(end_us)))
    for name, us in (("start", start_us), ("profile_start", start_us), ("answer", answer_us),
                     ("bridge", times.get("bridged", 0)), ("last_hold", 0)):
        pairs += [(f"{name}_epoch", str(us // 1_000_000)), (f"{name}_uepoch", str(us))]
    pairs += [("hold_accum_seconds", "0"), ("hold_accum_usec", "0"), ("hold_accum_ms", "0")]
    for name, us in (("resurrect", 0), ("progress", times.get("progress", 0)),
                     ("progress_media", times.get("progress_media", 0)), ("end", end_us)):
        pairs += [(f"{name}_epoch", str(us // 1_000_000)), (f"{name}_uepoch", str(us))]
    pairs.append(("last_app", current_app or ""))
    if current_arg:
        pairs.append(("last_arg", current_arg))
    pairs.append(("caller_id", f'"{caller_id_name}" <{caller_id_number}>'))
    duration_us = max(0, end_us - start_us)
    bill_us = max(0, end_us - answer_us) if answer_us else 0
    wait_us = max(0, answer_us - start_us) if answer_us else 0
    spans = (("duration", "mduration", "uduration", duration_us), ("billsec", "billmsec", "billusec", bill_us),
             ("progresssec", "progressmsec", "progressusec", 0), ("answersec", "answermsec", "answerusec", wait_us),
             ("waitsec", "waitmsec", "waitusec", wait_us),
             ("progress_mediasec", "progress_mediamsec", "progress_mediausec", 0),
             ("flow_billsec", "flow_billmsec", "flow_billusec", bill_us))
    pairs += [(sec, str(us // 1_000_000)) for sec, _, _, us in spans]
    pairs += [(msec, str(us // 1000)) for _, msec, _, us in spans]
    pairs += [(usec, str(us)) for _, _, usec, us in spans]
    if disposition:
        pairs.append(("sip_hangup_disposition", disposition))
    return pairs
