"""User.username_key: the username as compared (NFKC, case folded), unique.

Existing users get their key here. Two existing users whose names are the same
name (`Bob` and `bob`) stop the migration with a message naming them: rename
one, then migrate again.
"""

import unicodedata

from django.db import migrations, models

import jobs.models


def username_key(username):
    # jobs.usernames.username_key, frozen as of this migration.
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", username).casefold())


def fill_username_keys(apps, schema_editor):
    User = apps.get_model("jobs", "User")
    seen = {}
    clashes = []
    for user in User.objects.order_by("pk").only("pk", "username"):
        key = username_key(user.username)
        if key in seen:
            clashes.append(f"{seen[key]!r} and {user.username!r}")
            continue
        seen[key] = user.username
        User.objects.filter(pk=user.pk).update(username_key=key)
    if clashes:
        raise RuntimeError(
            "These usernames are the same name once case and Unicode forms are "
            "ignored; rename one of each pair, then migrate again: " + "; ".join(clashes)
        )


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0002_job_types_limits_and_state_constraints"),
    ]

    operations = [
        migrations.AlterModelManagers(
            name="user",
            managers=[
                ("objects", jobs.models.UserManager()),
            ],
        ),
        migrations.AddField(
            model_name="user",
            name="username_key",
            field=models.CharField(editable=False, max_length=300, null=True),
        ),
        migrations.RunPython(fill_username_keys, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="user",
            name="username_key",
            field=models.CharField(editable=False, max_length=300, unique=True),
        ),
    ]
