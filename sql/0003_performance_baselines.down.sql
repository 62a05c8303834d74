DROP TABLE performance_baselines;
