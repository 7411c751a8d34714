"""workers: score sensor messages from RabbitMQ with the model bound to their service."""
