"""Files uploaded to the stand-in: announced by files.getUploadURLExternal, received at the
URL it returned (the client POSTs the bytes there), shared by files.completeUploadExternal."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from aiohttp import web

#: Slack's upload limit is 1 GB; a stand-in needs far less.
MAX_UPLOAD = 50 * 1024 * 1024


@dataclass
class Upload:
    file_id: str
    filename: str
    length: int
    alt_txt: str
    data: bytes | None = None
    title: str = ""
    shared_in: list[str] = field(default_factory=list)


class Uploads:
    """The files announced, received and shared, by file id and by upload key."""

    def __init__(self) -> None:
        self.base = ""
        self.by_id: dict[str, Upload] = {}
        self._by_key: dict[str, Upload] = {}

    def announce(self, filename: str, length: int, alt_txt: str) -> tuple[str, str]:
        upload = Upload("F" + secrets.token_hex(5).upper(), filename, length, alt_txt)
        key = secrets.token_urlsafe(12)
        self.by_id[upload.file_id] = upload
        self._by_key[key] = upload
        return upload.file_id, f"{self.base}{key}"

    async def receive(self, request: web.Request) -> web.Response:
        upload = self._by_key.get(request.match_info["key"])
        if upload is None:
            return web.Response(status=404, text="Not Found")
        data = await request.content.read(MAX_UPLOAD + 1)
        if len(data) > MAX_UPLOAD:
            return web.Response(status=413, text="Payload Too Large")
        upload.data = data
        return web.Response(text=f"OK - {len(data)}")
