"""Seed one agent per strategy, so a fresh install answers without any setup."""

from django.db import migrations

SPOKEN = "You are a helpful voice assistant. Answer in one or two short sentences: they are spoken aloud."
SEED = [
    {"name": "echo", "strategy": "echo", "instructions": "", "tools": []},
    {"name": "rules", "strategy": "rules", "instructions": "",
     "tools": ["order_status", "account_balance"]},
    {"name": "openai", "strategy": "openai", "instructions": SPOKEN,
     "tools": ["order_status", "account_balance"]},
]


def seed(apps, schema_editor):
    Agent = apps.get_model("agents_app", "Agent")
    for fields in SEED:
        Agent.objects.get_or_create(name=fields["name"], defaults=fields)


def unseed(apps, schema_editor):
    apps.get_model("agents_app", "Agent").objects.filter(
        name__in=[fields["name"] for fields in SEED], sessions__isnull=True
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("agents_app", "0002_initial")]
    operations = [migrations.RunPython(seed, unseed)]
