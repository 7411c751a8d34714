"""ml_data_api: owns the PostgreSQL/TimescaleDB tables of every use case."""
