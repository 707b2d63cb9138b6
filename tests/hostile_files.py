"""Hostile export files, generated in the test (never committed): entity bombs, an external
entity, an XLSX zip bomb, wide encodings, oversize fields."""

import io
import struct
import zlib
from pathlib import Path

import openpyxl

ENDNOTE_RECORD = (
    "<record><ref-type name='Journal Article'>17</ref-type><titles><title>{title}</title>"
    "</titles></record>"
)


def billion_laughs() -> bytes:
    entities = ['<!ENTITY lol "lol">']
    for level in range(1, 10):
        previous = "lol" if level == 1 else f"lol{level - 1}"
        entities.append(f'<!ENTITY lol{level} "{("&" + previous + ";") * 10}">')
    return (
        '<?xml version="1.0"?>\n<!DOCTYPE xml [\n' + "\n".join(entities) + "\n]>\n"
        "<xml><records>" + ENDNOTE_RECORD.format(title="&lol9;") + "</records></xml>\n"
    ).encode()


def quadratic_blowup() -> bytes:
    # One 50 KB entity referenced 50,000 times: 2.5 GB of text without any nesting.
    reference = "&big;" * 50_000
    return (
        '<?xml version="1.0"?>\n<!DOCTYPE xml [<!ENTITY big "' + "x" * 50_000 + '">]>\n'
        "<xml><records>" + ENDNOTE_RECORD.format(title=reference) + "</records></xml>\n"
    ).encode()


def external_entity(target: Path) -> bytes:
    return (
        '<?xml version="1.0"?>\n'
        f'<!DOCTYPE xml [<!ENTITY secret SYSTEM "file://{target}">]>\n'
        "<xml><records>" + ENDNOTE_RECORD.format(title="&secret;") + "</records></xml>\n"
    ).encode()


def _workbook_parts() -> list[tuple[str, bytes]]:
    workbook = openpyxl.Workbook()
    workbook.active.append(["Title", "Authors"])
    workbook.active.append(["A study", "Doe, J."])
    buffer = io.BytesIO()
    workbook.save(buffer)
    buffer.seek(0)
    import zipfile

    with zipfile.ZipFile(buffer) as archive:
        return [(name, archive.read(name)) for name in archive.namelist()]


def xlsx_zip_bomb(unpacked: int = 2**30) -> bytes:
    """A real workbook whose sheet unpacks from ~1 MB to `unpacked` bytes.

    The deflate stream is one compressed 1 MiB block repeated (a full flush makes each block
    independent), so building it takes milliseconds instead of compressing a gigabyte.
    """
    chunk = b'<row><c t="inlineStr"><is><t>x</t></is></c></row>' * 25_000
    chunk = chunk[: 2**20]
    repeats = unpacked // len(chunk)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    again = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert block == again
    crc = 0
    for _ in range(repeats):
        crc = zlib.crc32(chunk, crc)
    bomb = block * repeats + compressor.flush(zlib.Z_FINISH)
    members = []
    for name, data in _workbook_parts():
        if name == "xl/worksheets/sheet1.xml":
            members.append((name, bomb, crc, repeats * len(chunk)))
        else:
            packer = zlib.compressobj(9, zlib.DEFLATED, -15)
            members.append(
                (name, packer.compress(data) + packer.flush(), zlib.crc32(data), len(data))
            )
    out = io.BytesIO()
    central = []
    for name, packed, crc32, size in members:
        encoded = name.encode()
        offset = out.tell()
        out.write(
            struct.pack(
                "<IHHHHHIIIHH",
                0x04034B50,
                20,
                0,
                8,
                0,
                0x21,
                crc32,
                len(packed),
                size,
                len(encoded),
                0,
            )
            + encoded
            + packed
        )
        central.append(
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                20,
                20,
                0,
                8,
                0,
                0x21,
                crc32,
                len(packed),
                size,
                len(encoded),
                0,
                0,
                0,
                0,
                0,
                offset,
            )
            + encoded
        )
    start = out.tell()
    directory = b"".join(central)
    out.write(directory)
    out.write(
        struct.pack(
            "<IHHHHIIH", 0x06054B50, 0, 0, len(central), len(central), len(directory), start, 0
        )
    )
    return out.getvalue()


def utf16_ris(bom: bool = True, big_endian: bool = False) -> bytes:
    text = "TY  - JOUR\r\nTI  - Über Qualität 1&lt;p≤2\r\nAU  - Müller, Jörg\r\nER  - \r\n"
    if bom:
        return text.encode("utf-16-be" if big_endian else "utf-16")
    return text.encode("utf-16-be" if big_endian else "utf-16-le")


def oversize_title_csv(title_chars: int) -> bytes:
    return ("Title,Authors,Abstract\n" + "T" * title_chars + ',"Doe, J.",Text\n').encode()


def many_records_ris(count: int) -> bytes:
    """A large, valid RIS export (its import takes long enough to be interrupted)."""
    entry = (
        "TY  - JOUR\nTI  - Study number {n} on machine learning operations\n"
        "AU  - Doe, Jane\nAU  - Roe, Rick\nPY  - 2020\nAB  - {abstract}\nER  - \n\n"
    )
    abstract = "An abstract long enough to make the import take a while. " * 8
    return "".join(entry.format(n=n, abstract=abstract) for n in range(count)).encode()
