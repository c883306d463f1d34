"""Small but valid media files, built byte by byte, and the checks the fakes apply to incoming audio.

The fakes must hand out files that real decoders accept (Telegram plays a TTS answer as a voice message,
photos are sent as JPEG), and must reject audio a real decoder would choke on. No media library is
installed, so the formats are written here from their specifications: Ogg (RFC 3533) carrying Opus
(RFC 7845), baseline JPEG (ITU T.81) and WAV (RIFF, 16-bit PCM).
"""

from __future__ import annotations

import io
import struct
import wave
from dataclasses import dataclass

__all__ = [
    "AudioProblem",
    "OggPage",
    "audio_duration_ms",
    "check_audio",
    "jpeg_gray_8x8",
    "mp3_silence",
    "ogg_opus_silence",
    "parse_ogg",
    "wav_silence",
]

_OGG_CRC_POLY = 0x04C11DB7


def _ogg_crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ _OGG_CRC_POLY) if crc & 0x80000000 else crc << 1
        table.append(crc & 0xFFFFFFFF)
    return tuple(table)


_CRC_TABLE = _ogg_crc_table()


def _ogg_crc(data: bytes) -> int:
    # Ogg's CRC-32 is not zlib's: direct (non-reflected) polynomial 0x04C11DB7, zero init, no final xor.
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC_TABLE[((crc >> 24) & 0xFF) ^ byte]
    return crc


_BOS, _EOS = 0x02, 0x04


def _ogg_page(packets: list[bytes], *, header_type: int, granule: int, serial: int, sequence: int) -> bytes:
    lacing = bytearray()
    for packet in packets:
        size = len(packet)
        lacing.extend([255] * (size // 255))
        lacing.append(size % 255)
    if len(lacing) > 255:
        raise ValueError("too many packets for one Ogg page")
    header = struct.pack("<4sBBqIIIB", b"OggS", 0, header_type, granule, serial, sequence, 0, len(lacing))
    page = bytearray(header + bytes(lacing) + b"".join(packets))
    struct.pack_into("<I", page, 22, _ogg_crc(bytes(page)))
    return bytes(page)


# One 20 ms CELT-only fullband mono frame that decodes to silence (TOC 0xF8, then the silence frame).
_OPUS_SILENT_FRAME = b"\xf8\xff\xfe"
_OPUS_PRE_SKIP = 312


def ogg_opus_silence(duration_ms: int = 200, *, serial: int = 0x5EED) -> bytes:
    """A mono Ogg/Opus file of `duration_ms` (rounded to 20 ms frames) of silence.

    Different `serial` values give different bytes for the same duration, so tests can script one
    transcript per "voice note".
    """
    frames = max(1, duration_ms // 20)
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, 1, _OPUS_PRE_SKIP, 48000, 0, 0)
    vendor = b"fake-speechkit"
    tags = b"OpusTags" + struct.pack("<I", len(vendor)) + vendor + struct.pack("<I", 0)
    pages = [
        _ogg_page([head], header_type=_BOS, granule=0, serial=serial, sequence=0),
        _ogg_page([tags], header_type=0, granule=0, serial=serial, sequence=1),
    ]
    sequence = 2
    done = 0
    while done < frames:
        batch = min(frames - done, 50)
        done += batch
        last = done == frames
        pages.append(
            _ogg_page(
                [_OPUS_SILENT_FRAME] * batch,
                header_type=_EOS if last else 0,
                granule=_OPUS_PRE_SKIP + done * 960,  # 960 samples = 20 ms at Opus's 48 kHz clock
                serial=serial,
                sequence=sequence,
            )
        )
        sequence += 1
    return b"".join(pages)


@dataclass(frozen=True)
class OggPage:
    header_type: int
    granule: int
    serial: int
    sequence: int
    packets_data: bytes


class AudioProblem(ValueError):
    """Audio a real decoder would reject; the message says why (for the fake's error details)."""


def parse_ogg(data: bytes) -> list[OggPage]:
    """Every page of an Ogg stream, each with its CRC checked; AudioProblem for anything malformed."""
    pages: list[OggPage] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < 27 or data[offset : offset + 4] != b"OggS":
            raise AudioProblem(f"no Ogg page at byte {offset}")
        _, version, header_type, granule, serial, sequence, crc, count = struct.unpack_from(
            "<4sBBqIIIB", data, offset
        )
        if version != 0:
            raise AudioProblem(f"unknown Ogg version {version}")
        lacing = data[offset + 27 : offset + 27 + count]
        body_start = offset + 27 + count
        body_end = body_start + sum(lacing)
        if len(lacing) != count or body_end > len(data):
            raise AudioProblem("truncated Ogg page")
        page = bytearray(data[offset:body_end])
        struct.pack_into("<I", page, 22, 0)
        if _ogg_crc(bytes(page)) != crc:
            raise AudioProblem(f"bad Ogg page checksum at byte {offset}")
        pages.append(OggPage(header_type, granule, serial, sequence, data[body_start:body_end]))
        offset = body_end
    if not pages:
        raise AudioProblem("empty Ogg stream")
    return pages


def _check_ogg_opus(data: bytes) -> None:
    pages = parse_ogg(data)
    if not pages[0].packets_data.startswith(b"OpusHead"):
        raise AudioProblem("Ogg stream does not carry Opus")
    channels = pages[0].packets_data[9]
    if channels != 1:
        raise AudioProblem(f"{channels} audio channels; only mono is supported")


def _check_wav(data: bytes) -> None:
    try:
        with wave.open(io.BytesIO(data), "rb") as reader:
            channels, width = reader.getnchannels(), reader.getsampwidth()
    except (wave.Error, EOFError) as error:
        raise AudioProblem(f"not a WAV file: {error}") from None
    if width != 2:
        raise AudioProblem("WAV is not 16-bit linear PCM")
    if channels != 1:
        raise AudioProblem(f"{channels} audio channels; only mono is supported")


def _check_mp3(data: bytes) -> None:
    if data.startswith(b"ID3"):
        if len(data) < 10:
            raise AudioProblem("truncated ID3 tag")
        size = 0
        for byte in data[6:10]:  # ID3v2 sizes are "synchsafe": 7 bits per byte
            size = (size << 7) | (byte & 0x7F)
        data = data[10 + size :]
    if len(data) < 4 or data[0] != 0xFF or data[1] & 0xE0 != 0xE0:
        raise AudioProblem("no MPEG audio frame")


def check_audio(data: bytes, container: str) -> None:
    """Raise AudioProblem unless `data` is decodable as `container` (``OGG_OPUS``, ``WAV``, ``MP3``)."""
    if not data:
        raise AudioProblem("no audio data")
    checks = {"OGG_OPUS": _check_ogg_opus, "WAV": _check_wav, "MP3": _check_mp3}
    check = checks.get(container)
    if check is None:
        raise AudioProblem(f"unsupported container {container}")
    check(data)


def audio_duration_ms(data: bytes, container: str) -> int | None:
    """How long decodable audio plays, where the container says so cheaply (Ogg/Opus, WAV); else None."""
    if container == "OGG_OPUS":
        pages = parse_ogg(data)
        pre_skip = struct.unpack_from("<H", pages[0].packets_data, 10)[0]
        return max(0, pages[-1].granule - pre_skip) // 48  # Opus granules count 48 kHz samples
    if container == "WAV":
        with wave.open(io.BytesIO(data), "rb") as reader:
            return reader.getnframes() * 1000 // reader.getframerate()
    return None


def wav_silence(duration_ms: int = 200, *, rate: int = 16000, channels: int = 1) -> bytes:
    """A 16-bit PCM WAV file of silence."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(b"\x00\x00" * channels * (rate * duration_ms // 1000))
    return buffer.getvalue()


def mp3_silence(frames: int = 10) -> bytes:
    """MPEG-1 Layer III frames (128 kbit/s, 44.1 kHz, mono) whose all-zero bodies decode to silence."""
    header = bytes([0xFF, 0xFB, 0x90, 0xC0])  # sync, MPEG-1 L3 no CRC; 128k 44.1k no padding; mono
    frame_bytes = 144 * 128000 // 44100  # 417
    return (header + bytes(frame_bytes - len(header))) * frames


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def jpeg_gray_8x8(level: int = 0) -> bytes:
    """A baseline JPEG: one 8x8 grayscale block of a flat colour (`level` -1023..1023 around mid-gray).

    The block has only a DC coefficient, so both Huffman tables need just the symbols used: the DC
    difference category, and end-of-block for the AC table.
    """
    if not -1023 <= level <= 1023:
        raise ValueError("level out of range")
    category = abs(level).bit_length()
    quant = bytes([0]) + bytes([1] * 64)  # table 0, 8-bit precision, all ones
    frame = struct.pack(">BHHB", 8, 8, 8, 1) + bytes([1, 0x11, 0])  # 8x8, one component, table 0
    # DHT: class/id, 16 code-length counts, then symbols. One code of length 1 ("0") per table.
    dc_table = bytes([0x00]) + bytes([1] + [0] * 15) + bytes([category])
    ac_table = bytes([0x10]) + bytes([1] + [0] * 15) + bytes([0x00])
    scan = bytes([1, 1, 0x00]) + bytes([0, 63, 0])  # one component using DC table 0 / AC table 0
    # Entropy-coded data: DC code "0", then `category` bits of the value, then AC end-of-block "0".
    bits = "0"
    if category:
        value = level if level > 0 else level + (1 << category) - 1
        bits += format(value, f"0{category}b")
    bits += "0"
    bits += "1" * (-len(bits) % 8)  # pad with one-bits to a byte boundary, as T.81 prescribes
    entropy = bytearray()
    for i in range(0, len(bits), 8):
        byte = int(bits[i : i + 8], 2)
        entropy.append(byte)
        if byte == 0xFF:
            entropy.append(0x00)  # byte stuffing
    return b"".join(
        [
            b"\xff\xd8",
            _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"),
            _segment(0xDB, quant),
            _segment(0xC0, frame),
            _segment(0xC4, dc_table),
            _segment(0xC4, ac_table),
            _segment(0xDA, scan),
            bytes(entropy),
            b"\xff\xd9",
        ]
    )
