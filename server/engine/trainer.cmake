# Owned by the trainer work: data, optimizer, schedule, trainer loop, checkpoints.
set(ATTUNE_TRAINER_SOURCES)
set(ATTUNE_TRAINER_TESTS)
