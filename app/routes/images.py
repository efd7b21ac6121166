"""Images: upload (``POST /api/images``), metadata and PNG of any id, and the MNIST and sample lists."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.admission import gate
from app.errors import ApiError, BodyError
from app.image_source import SAMPLES, image_info, mnist_set, png_bytes, store_for
from app.responses import OrjsonResponse
from app.schemas import (
    MNIST_PAGE_LIMIT,
    ImageMeta,
    Message,
    MnistList,
    SampleList,
    UploadResult,
    ValidationErrorBody,
)
from app.settings import SettingsDep
from app.store import UnknownImage, is_activation_id, is_upload_id
from app.uploads import ACCEPTED_TEXT, normalise_upload

router = APIRouter(prefix="/api", tags=["images"])

MULTIPART_OVERHEAD = 64 * 1024
"""Bytes allowed on top of ``max_upload_bytes`` for the multipart boundaries and headers."""

UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": f"A {ACCEPTED_TEXT} image.",
                        }
                    },
                }
            }
        },
    }
}

ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": Message, "description": "Unknown image id."},
    410: {"model": Message, "description": "The stored file is corrupt and is not served."},
}


async def _read_capped(request: Request, limit: int) -> bytes:
    """The request body, read chunk by chunk and abandoned (413) as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ApiError(
            413, f"the upload is {int(declared)} bytes; the limit is {limit - MULTIPART_OVERHEAD} bytes"
        )
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, f"the upload is larger than the limit of {limit - MULTIPART_OVERHEAD} bytes")
    return bytes(body)


MAX_FILENAME_BYTES = 255
"""Longest file name accepted in a part's ``Content-Disposition`` (what common file systems allow)."""
MAX_PART_HEADER_BYTES = 8 * 1024
"""Longest header block of one multipart part."""
MAX_FIELD_BYTES = 64 * 1024
"""Largest value of a multipart field other than ``file`` (the page sends none)."""

_BOUNDARY = re.compile(r'boundary=(?:"([^"]{1,200})"|([^\s;,"]{1,200}))', re.IGNORECASE)
_FILENAME = re.compile(rb'filename\*?=("?)(.*?)\1(?:;|\r\n|$)', re.IGNORECASE | re.DOTALL)


def check_multipart(content_type: str, body: bytes) -> None:
    """Name what is wrong with a multipart body before the parser sees it (400 with a sentence).

    Checks: a ``boundary`` parameter, the body opening with it, the closing boundary ``--B--`` being
    there (a body cut off in transit lacks it), every part's header block ending, and every file name
    being at most :data:`MAX_FILENAME_BYTES` bytes.
    """
    match = _BOUNDARY.search(content_type)
    if match is None:
        raise ApiError(
            400,
            "the Content-Type multipart/form-data has no boundary parameter; let the browser or HTTP "
            "library build the multipart body (field 'file')",
        )
    delimiter = b"--" + (match.group(1) or match.group(2)).encode("latin-1")
    first = body.find(delimiter)
    shown = delimiter.decode("latin-1")
    if first < 0:
        raise ApiError(400, f"the multipart body does not contain its boundary {shown!r}")
    if body.rfind(delimiter + b"--") <= first:
        raise ApiError(
            400,
            f"the multipart body ends without its closing boundary {shown + '--'!r}: "
            "it was cut off; send the whole body",
        )
    for part in body[first + len(delimiter) :].split(b"\r\n" + delimiter):
        if part.startswith(b"--"):
            break  # the closing boundary: the epilogue follows
        end = part.find(b"\r\n\r\n")
        if end < 0 or end > MAX_PART_HEADER_BYTES:
            raise ApiError(
                400,
                f"a multipart part's headers do not end within {MAX_PART_HEADER_BYTES} bytes (a blank line "
                "must follow them)",
            )
        for found in _FILENAME.finditer(part[:end]):
            length = len(found.group(2))
            if length > MAX_FILENAME_BYTES:
                raise ApiError(
                    400, f"the file name is {length} bytes long; at most {MAX_FILENAME_BYTES} bytes"
                )


def _parser_sentence(message: str) -> str:
    """The multipart parser's message as a sentence that says what is allowed."""
    if "exceeded maximum size" in message:
        return (
            f"a multipart field other than 'file' is larger than allowed; at most {MAX_FIELD_BYTES} bytes "
            "(send the image in the field 'file')"
        )
    if "Too many" in message:
        return f"{message} Send one multipart field 'file' with the image."
    return f"the multipart body could not be read: {message}"


async def _file_field(request: Request, body: bytes) -> bytes:
    """The bytes of the multipart field ``file`` in ``body``."""
    check_multipart(request.headers.get("content-type", ""), body)
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    replay = Request(request.scope, receive)
    try:
        form = await replay.form(max_files=1, max_fields=8, max_part_size=MAX_FIELD_BYTES)
    except StarletteHTTPException as exc:
        raise ApiError(400, _parser_sentence(str(exc.detail))) from None
    except Exception as exc:  # python-multipart parse errors
        raise ApiError(400, _parser_sentence(str(exc))) from None
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise BodyError("file", "send the image in the multipart field 'file'")
        return await upload.read()
    finally:
        await form.close()


@router.post(
    "/images",
    status_code=201,
    response_model=UploadResult,
    openapi_extra=UPLOAD_BODY,
    responses={
        200: {"model": UploadResult, "description": "Already stored (same id)."},
        400: {"model": Message, "description": "Empty, corrupt or truncated image."},
        413: {"model": Message, "description": "Too many bytes, or too many pixels (decompression bomb)."},
        415: {"model": Message, "description": "Not an image in an accepted format."},
        422: {"model": ValidationErrorBody, "description": "No multipart field 'file'."},
        507: {"model": Message, "description": "The store is full of recently used images."},
    },
)
async def upload_image(request: Request, settings: SettingsDep) -> Response:
    """Upload an image (multipart field ``file``): PNG, JPEG, GIF, BMP, WebP or TIFF.

    It is decoded (first frame/page), EXIF-oriented, converted to 8-bit gray or RGB (alpha composited on
    white), downscaled (Lanczos) so its longer side is at most ``max_side``, and stored as PNG under the
    SHA-256 of those PNG bytes: 201 when new, 200 when the same image was already stored.
    """
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise ApiError(415, f"send the image as multipart/form-data in the field 'file' ({ACCEPTED_TEXT})")
    body = await _read_capped(request, settings.max_upload_bytes + MULTIPART_OVERHEAD)
    data = await _file_field(request, body)
    if len(data) > settings.max_upload_bytes:
        raise ApiError(413, f"the image is {len(data)} bytes; the limit is {settings.max_upload_bytes} bytes")
    image = await gate("decode", settings).run(
        request, normalise_upload, data, settings.max_side, settings.max_pixels, settings.max_decode_bytes
    )
    original = {"original_width": image.original_width, "original_height": image.original_height}
    saved = await run_in_threadpool(store_for(settings).save, image.png, original)
    payload = {
        "id": saved.image_id,
        "width": image.width,
        "height": image.height,
        "channels": image.channels,
        "original_width": image.original_width,
        "original_height": image.original_height,
        "downscaled": image.downscaled,
    }
    return OrjsonResponse(payload, status_code=201 if saved.created else 200)


@router.get(
    "/images/{image_id}.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "The image as PNG."}, **ERRORS},
)
def get_image_png(image_id: str, settings: SettingsDep) -> Response:
    """The image as PNG (uploads exactly as stored; always ``image/png``)."""
    data = png_bytes(image_id, settings)
    cache = "public, max-age=31536000, immutable" if is_upload_id(image_id) else "public, max-age=86400"
    return Response(data, media_type="image/png", headers={"Cache-Control": cache})


@router.get(
    "/images/{image_id}.npy",
    response_class=Response,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "The activation as .npy."},
        **ERRORS,
    },
)
def get_activation_npy(image_id: str, settings: SettingsDep) -> Response:
    """A stored activation (``act:<sha256>``) exactly as stored: a float32 ``(C, H, W)`` ``.npy`` (read it
    with ``np.load(..., allow_pickle=False)``). Any other id is a 404."""
    if not is_activation_id(image_id):
        raise UnknownImage(image_id)
    data = store_for(settings).read(image_id)
    return Response(
        data,
        media_type="application/octet-stream",
        headers={
            "Cache-Control": "public, max-age=31536000, immutable",
            "Content-Disposition": 'attachment; filename="layer_input.npy"',
        },
    )


@router.get("/images/{image_id}", response_model=ImageMeta, responses=ERRORS)
def get_image(image_id: str, settings: SettingsDep) -> dict[str, Any]:
    """Metadata of an upload, ``mnist:N`` or ``sample:NAME``."""
    return image_info(image_id, settings).as_dict()


@router.get("/mnist", response_model=MnistList)
def list_mnist(
    settings: SettingsDep,
    label: int | None = Query(default=None, ge=0, le=9, description="Only digits with this label."),
    offset: int = Query(default=0, ge=0, le=10_000_000),
    limit: int = Query(default=100, ge=1, le=MNIST_PAGE_LIMIT),
) -> dict[str, Any]:
    """MNIST digits (ids ``mnist:N``) with their labels, optionally filtered by label, paged."""
    _, labels = mnist_set(settings)
    indices = np.arange(len(labels)) if label is None else np.flatnonzero(labels == label)
    page = indices[offset : offset + limit]
    items = [{"id": f"mnist:{i}", "index": int(i), "label": int(labels[i])} for i in page]
    return {"total": int(len(indices)), "offset": offset, "limit": limit, "items": items}


@router.get("/samples", response_model=SampleList)
def list_samples(settings: SettingsDep) -> dict[str, Any]:
    """The bundled photos (ids ``sample:NAME``) with their credits and licences."""
    samples = []
    for sample in SAMPLES.values():
        info = image_info(f"sample:{sample.name}", settings)
        samples.append(
            {
                "id": info.id,
                "name": sample.name,
                "width": info.width,
                "height": info.height,
                "channels": info.channels,
                "description": sample.description,
                "credit": sample.credit,
                "licence": sample.licence,
            }
        )
    return {"samples": samples}
