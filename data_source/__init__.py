"""data_source: publishes production sensor data to RabbitMQ."""
