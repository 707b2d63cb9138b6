"""The upload handler for every uploaded file: written to disk in chunks while its sha256 is
computed, refused as soon as it passes the size limit, never held in memory whole.

The temporary file is anonymous (unlinked from the start), so the operating system removes
it when the request ends, fails or the web process is killed; nothing is left behind.
Refusals are kept on the request (`upload_refusals`) for the view to word in its answer.
"""

import hashlib
import tempfile

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.http import QueryDict
from django.utils.datastructures import MultiValueDict


def human_size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    if size >= 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size} bytes"


# The request attribute holding what the handler refused.
_REFUSALS = "upload_refusals"


def upload_refusals(request) -> list[str]:
    """What the upload handler refused in this request, in words."""
    return getattr(request, _REFUSALS, [])


class StreamedUpload(UploadedFile):
    """An uploaded file on disk with the sha256 of its bytes, computed while it arrived."""

    sha256: str = ""


class StreamingUploadHandler(FileUploadHandler):
    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        self.refusals: list[str] = []
        setattr(self.request, _REFUSALS, self.refusals)
        limit = settings.UPLOAD_MAX_REQUEST_BYTES
        if content_length and content_length > limit:
            # Refused before a byte of the body is read: an empty form, and the reason.
            self.refusals.append(
                f"The upload is {human_size(content_length)}, more than the "
                f"{human_size(limit)} one request may carry; send fewer or smaller files at "
                "a time."
            )
            return QueryDict(encoding=encoding), MultiValueDict()
        return None

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.digest = hashlib.sha256()
        self.received = 0
        self.file = StreamedUpload(
            file=tempfile.TemporaryFile(suffix=".upload", dir=settings.FILE_UPLOAD_TEMP_DIR),
            name=self.file_name,
            content_type=self.content_type,
            size=0,
            charset=self.charset,
            content_type_extra=self.content_type_extra,
        )

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        limit = settings.UPLOAD_MAX_FILE_BYTES
        if self.received > limit:
            self.file.close()
            self.refusals.append(
                f"{self.file_name} is larger than {human_size(limit)}, the limit for one "
                "file; it was not stored. Split the export into smaller files."
            )
            raise SkipFile()
        self.digest.update(raw_data)
        self.file.write(raw_data)
        return None

    def file_complete(self, file_size):
        self.file.seek(0)
        self.file.size = file_size
        self.file.sha256 = self.digest.hexdigest()
        return self.file

    def upload_interrupted(self):
        if hasattr(self, "file"):
            self.file.close()
