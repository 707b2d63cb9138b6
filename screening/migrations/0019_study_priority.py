# The queue priority moves off screening_study into a narrow table (issue 17): screening_study
# carries a stored tsvector with a GIN index and eight other indexes, and `priority` was in one
# of them, so every ranking write was a non-HOT update rewriting the whole row and every index
# (70-87 ms and 4-12 MB of WAL per 500 rows), and held the study's row lock against decisions.
#
# 1. StudyPriority(study pk, stage, priority), index (stage, priority DESC, study): the ranked
#    queue of a stage is a walk of that index.
# 2. Existing priorities are copied, with the study's current stage as the stage that wrote them
#    (the only stage whose queue read them).
# 3. Merge snapshots (StudyMerge.snapshot["absorbed"], Django-serialised rows) of studies taken
#    before this migration name the dropped field: an unmerge deserialising them would fail on
#    it, so it is removed from them (the absorbed study comes back unranked; its next retrain
#    ranks it).
# 4. Study.priority and its index study_queue_order go; the unranked queue (studies of the stage
#    without a row for it, by id) gets (current_stage, outcome, id).

import django.db.models.deletion
from django.db import migrations, models

COPY = (
    "INSERT INTO screening_studypriority (study_id, stage_id, priority)"
    " SELECT id, current_stage_id, priority FROM screening_study"
    " WHERE priority IS NOT NULL AND current_stage_id IS NOT NULL"
)
COPY_BACK = (
    "UPDATE screening_study SET priority = (SELECT p.priority FROM screening_studypriority p"
    " WHERE p.study_id = screening_study.id)"
)


def snapshots_without_priority(apps, schema_editor):
    StudyMerge = apps.get_model("screening", "StudyMerge")
    changed = []
    for merge in StudyMerge.objects.only("pk", "snapshot").iterator(chunk_size=500):
        absorbed = (merge.snapshot or {}).get("absorbed") if isinstance(merge.snapshot, dict) else None
        if not isinstance(absorbed, list):
            continue
        touched = False
        for item in absorbed:
            if (
                isinstance(item, dict)
                and item.get("model") == "screening.study"
                and isinstance(item.get("fields"), dict)
                and "priority" in item["fields"]
            ):
                del item["fields"]["priority"]
                touched = True
        if touched:
            changed.append(merge)
        if len(changed) >= 500:
            StudyMerge.objects.bulk_update(changed, ["snapshot"])
            changed = []
    if changed:
        StudyMerge.objects.bulk_update(changed, ["snapshot"])


class Migration(migrations.Migration):

    dependencies = [
        ('screening', '0017_ranking_heartbeat'),
    ]

    operations = [
        migrations.CreateModel(
            name='StudyPriority',
            fields=[
                ('study', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='queue_priority', serialize=False, to='screening.study')),
                ('priority', models.FloatField()),
                ('stage', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='screening.stage')),
            ],
            options={
                'indexes': [models.Index(fields=['stage', '-priority', 'study'], name='study_priority_queue')],
            },
        ),
        migrations.RunSQL(COPY, COPY_BACK),
        migrations.RunPython(snapshots_without_priority, migrations.RunPython.noop),
        migrations.RemoveIndex(
            model_name='study',
            name='study_queue_order',
        ),
        migrations.RemoveField(
            model_name='study',
            name='priority',
        ),
        migrations.AddIndex(
            model_name='study',
            index=models.Index(fields=['current_stage', 'outcome', 'id'], name='study_queue_unranked'),
        ),
    ]
