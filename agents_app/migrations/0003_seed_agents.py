"""Seed one agent per strategy, so a fresh install answers without any setup."""

from django.db import migrations

from agents_app.seed import SEED_AGENTS, seed_agents


def seed(apps, schema_editor):
    seed_agents(apps.get_model("agents_app", "Agent"))


def unseed(apps, schema_editor):
    apps.get_model("agents_app", "Agent").objects.filter(
        name__in=[fields["name"] for fields in SEED_AGENTS], sessions__isnull=True
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("agents_app", "0002_initial")]
    operations = [migrations.RunPython(seed, unseed)]
