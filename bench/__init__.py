"""`make bench`: Amulet against bare baselines, every comparison measured in the same run."""
