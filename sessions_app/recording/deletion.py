"""A deleted session takes its recording with it.

Django never deletes a FileField's file with its row, so a session deleted in the admin (or
with its queryset) would leave the caller's voice in storage, named by nobody and found by
nobody: the one thing a deletion is asked to remove. The file goes once the deletion commits,
so a rolled-back deletion keeps both.
"""

from __future__ import annotations

import logging

from django.core.files.storage import Storage
from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from sessions_app.models import Session

logger = logging.getLogger(__name__)


@receiver(post_delete, sender=Session, dispatch_uid="sessions_app.delete_recording")
def delete_recording(sender: type[Session], instance: Session, **kwargs: object) -> None:
    name = instance.recording.name
    if name:
        storage = instance.recording.storage
        transaction.on_commit(lambda: _delete(storage, name), using=kwargs.get("using"))


def _delete(storage: Storage, name: str) -> None:
    try:
        storage.delete(name)
    except Exception as exc:  # the row is gone either way; say which file stayed behind
        logger.error("recording %s of a deleted session not deleted: %s", name, exc)
