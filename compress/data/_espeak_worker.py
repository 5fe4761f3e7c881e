"""Synthesise one utterance with libespeak-ng (ctypes, stdlib only) and exit.

Run as a script: ``python -I -S _espeak_worker.py VOICE RATE < text``; ``--check`` only
initialises. stdout: one JSON line {"sample_rate", "events": [[type, sample, phoneme], ...]}
followed by the int16 PCM bytes. Exit 2: unknown voice, 3: library or data missing.

One utterance per process on purpose: libespeak-ng keeps state between utterances (pitch
flutter / noise generators), so a second synthesis in the same process gives different
samples, and re-initialising the library hangs. A fresh process is deterministic (~0.1 s).
"""

import ctypes
import json
import sys

EV_LIST_END, EV_WORD, EV_PHONEME = 0, 1, 7
AUDIO_OUTPUT_SYNCHRONOUS, POS_CHARACTER, CHARS_UTF8 = 2, 1, 1
INIT_PHONEME_EVENTS, INIT_DONT_EXIT = 0x0001, 0x8000
PARAM_RATE = 1


class EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class Event(ctypes.Structure):  # espeak_EVENT from speak_lib.h
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # ms
        ("sample", ctypes.c_int),  # samples since the start of the utterance
        ("user_data", ctypes.c_void_p),
        ("id", EventId),
    ]


Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(Event))


def main(argv):
    try:
        lib = ctypes.CDLL("libespeak-ng.so.1")
    except OSError as err:
        print(f"libespeak-ng not found: {err}", file=sys.stderr)
        return 3
    rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, None, INIT_PHONEME_EVENTS | INIT_DONT_EXIT)
    if rate <= 0:
        print(f"espeak_Initialize failed ({rate})", file=sys.stderr)
        return 3
    if argv[:1] == ["--check"]:
        print(json.dumps({"sample_rate": rate}))
        return 0
    voice, words_per_minute = argv
    chunks, events = [], []

    def on_synth(wav, n, evs):
        if wav and n > 0:
            chunks.append(ctypes.string_at(wav, n * 2))
        i = 0
        while evs[i].type != EV_LIST_END:
            ev = evs[i]
            if ev.type in (EV_WORD, EV_PHONEME):
                name = ev.id.string.decode("utf-8", "replace") if ev.type == EV_PHONEME else ""
                events.append([ev.type, ev.sample, name])
            i += 1
        return 0

    callback = Callback(on_synth)
    lib.espeak_SetSynthCallback(callback)
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    if lib.espeak_SetVoiceByName(voice.encode()) != 0:
        print(f"espeak-ng has no voice {voice!r}", file=sys.stderr)
        return 2
    lib.espeak_SetParameter(PARAM_RATE, int(words_per_minute), 0)
    text = sys.stdin.buffer.read()
    lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                 ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    err = lib.espeak_Synth(text, len(text) + 1, 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
    if err != 0:
        print(f"espeak_Synth failed ({err})", file=sys.stderr)
        return 3
    out = sys.stdout.buffer
    out.write(json.dumps({"sample_rate": rate, "events": events}).encode() + b"\n")
    out.write(b"".join(chunks))
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
