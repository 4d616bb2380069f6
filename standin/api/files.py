"""files.getUploadURLExternal and files.completeUploadExternal: the two Web API calls of
Slack's upload flow (slack_sdk's files_upload_v2). Between them the client POSTs the bytes
to the URL the first returned; `Uploads.receive` is that URL's handler on the stand-in's
server. A file completed without its bytes, or with other bytes than announced, is refused
as Slack refuses it."""

from __future__ import annotations

from typing import Any

from standin.api.base import ApiRequest, Body, Handler, SlackState, bot_message, postable_channel
from standin.errors import ApiError
from standin.uploads import Upload


def get_upload_url(state: SlackState, req: ApiRequest) -> Body:
    filename = req.require("filename")
    try:
        length = int(req.require("length"))
    except ValueError as error:
        raise ApiError("invalid_arguments") from error
    if length <= 0:
        raise ApiError("invalid_arguments")
    file_id, url = state.uploads.announce(filename, length, req.text("alt_txt"))
    return {"ok": True, "upload_url": url, "file_id": file_id}


def complete_upload(state: SlackState, req: ApiRequest) -> Body:
    wanted = req.structured("files", "invalid_arguments")
    if not isinstance(wanted, list) or not wanted:
        raise ApiError("invalid_arguments")
    uploads = []
    for item in wanted:
        upload = (
            state.uploads.by_id.get(str(item.get("id", ""))) if isinstance(item, dict) else None
        )
        if upload is None or upload.data is None:
            raise ApiError("file_not_found")
        if len(upload.data) != upload.length:
            raise ApiError("file_upload_size_mismatch")
        upload.title = str(item.get("title") or upload.filename)
        uploads.append(upload)
    channel_id = req.text("channel_id")
    if channel_id:
        channel = postable_channel(state, channel_id)
        content: dict[str, Any] = {
            "text": req.text("initial_comment"),
            "files": [_file(upload) for upload in uploads],
        }
        if req.text("thread_ts"):
            content["thread_ts"] = req.text("thread_ts")
        state.messages.post(channel.id, bot_message(state.workspace, content))
        for upload in uploads:
            upload.shared_in.append(channel.id)
    return {"ok": True, "files": [_file(upload) for upload in uploads]}


def _file(upload: Upload) -> dict[str, Any]:
    return {
        "id": upload.file_id,
        "name": upload.filename,
        "title": upload.title,
        "size": upload.length,
        "alt_txt": upload.alt_txt,
        "channels": list(upload.shared_in),
    }


HANDLERS: dict[str, Handler] = {
    "files.getUploadURLExternal": get_upload_url,
    "files.completeUploadExternal": complete_upload,
}

__all__ = ["HANDLERS"]
