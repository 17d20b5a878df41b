"""A failure in the middle of a large export's upload: on S3 the multipart upload (parts
already sent) is aborted, in the folder the temporary file goes; no object is visible."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from app.lib.storage import PART_SIZE
from app.settings import Settings
from tests.exports.conftest import Run, seed

NOTES = "lorem ipsum dolor sit amet " * 100  # ~2.7 KB a row: 6,000 rows pass 10 MiB parts


class ExportFault(Exception):
    """Injected while the rows stream (not a connection error: the S3 backend reports
    those as StorageUnavailable, which is not what this test is about)."""


def incomplete_uploads(settings: Settings) -> list[dict]:
    client = boto3.client(
        "s3",
        endpoint_url=f"http://{settings.s3_endpoint}",
        aws_access_key_id=settings.s3_access_key,
        aws_secret_access_key=settings.s3_secret_key,
        region_name=settings.s3_region,
    )
    return list(client.list_multipart_uploads(Bucket=settings.s3_bucket).get("Uploads", []))


async def test_a_fault_mid_upload_aborts_it_and_leaves_nothing(
    run: Run, user_id: int, settings: Settings
) -> None:
    await seed(user_id, [{"name": f"Person {n}", "notes": NOTES} for n in range(6_000)])
    transfer = await run.start()
    sent: list[int] = []

    def fault(rows: int) -> None:
        sent.append(rows)
        if rows >= 5_500:  # well past the first 10 MiB part
            raise ExportFault("the export broke off")

    with pytest.raises(ExportFault):
        await run.finish(transfer.id, batch_rows=500, fault=fault)
    assert sent[-1] * len(NOTES) > PART_SIZE, "the fault must come after a whole part"
    assert await run.storage.list("exports/") == []
    if settings.s3_endpoint:
        assert incomplete_uploads(settings) == []
    else:
        leftovers = [p for p in Path(settings.storage_dir).rglob("*") if p.is_file()]
        assert leftovers == []
    after = await run.exports.get(user_id, transfer.id)
    assert after.status == "running"  # the job's retry (or its last attempt) decides
    assert after.file_key is None
