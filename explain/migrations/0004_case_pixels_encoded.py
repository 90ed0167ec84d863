"""Case.pixels_encoded_file: the viewer's pixels as compressed 16-bit integers + rescale.

The backfill encodes the cases imported before this migration from their pixels.npy (about a
second per 3000 x 2500 image; the demo library takes a few seconds). Colour cases, values with no
exact 16-bit form and cases whose .npy is missing or unreadable keep an empty field, and the viewer
keeps getting their .npy, as it does for any case the backfill has not reached.
"""

import io
import logging

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import migrations, models

logger = logging.getLogger(__name__)


def encode_existing(apps, schema_editor):
    from library.imaging import pixel_transfer

    Case = apps.get_model("explain", "Case")
    todo = Case.objects.filter(pixels_encoded_file="", is_color=False).exclude(pixels_file="")
    for case in todo.iterator(chunk_size=100):
        name = case.pixels_file.name
        folder = name.rsplit("/", 1)[0] if "/" in name else f"cases/{case.uid}"
        try:
            with default_storage.open(name, "rb") as handle:
                values = np.load(io.BytesIO(handle.read()), allow_pickle=False)
            encoded = pixel_transfer.encode(values)
        except Exception as exc:  # a missing or unreadable file: the viewer keeps the .npy
            logger.warning("case %s: pixels not encoded (%s)", case.pk, exc)
            continue
        if encoded is None:
            continue
        stored = default_storage.save(f"{folder}/pixels.xrsp", ContentFile(encoded))
        Case.objects.filter(pk=case.pk).update(pixels_encoded_file=stored)


class Migration(migrations.Migration):
    dependencies = [
        ("explain", "0003_empty_maps_reader_text"),
    ]

    operations = [
        migrations.AddField(
            model_name="case",
            name="pixels_encoded_file",
            field=models.FileField(
                blank=True,
                help_text="The same values as compressed 16-bit integers with their rescale (XRS "
                "pixels, explain/imaging/pixel_transfer.py); empty when they have no exact 16-bit "
                "form",
                max_length=255,
            ),
        ),
        migrations.RunPython(encode_existing, migrations.RunPython.noop, elidable=True),
    ]
