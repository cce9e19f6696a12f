"""Agents can greet phone callers; the seed agents that have a greeting get it."""

from django.db import migrations, models

from agents_app.seed import seed_greetings


def greet(apps, schema_editor):
    seed_greetings(apps.get_model("agents_app", "Agent"))


class Migration(migrations.Migration):
    dependencies = [("agents_app", "0003_seed_agents")]
    operations = [
        migrations.AddField(
            model_name="agent",
            name="greeting",
            field=models.TextField(
                blank=True,
                help_text="Said first when a phone call connects; blank: wait for the caller.",
            ),
        ),
        migrations.RunPython(greet, migrations.RunPython.noop),
    ]
