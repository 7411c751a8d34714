"""Moving a service's dead letters back to its queue, once what killed them is fixed
(a model bound, a dependency back). Poison messages simply fail again."""

from __future__ import annotations

import logging

import aio_pika

from gits_common.amqp import dead_letter_queue, declare_sensor_exchange

log = logging.getLogger(__name__)


async def replay_dead_letters(amqp_url: str, *, service: str, routing_key: str) -> int:
    """Republish every dead-lettered message of the service; returns how many."""
    moved = 0
    async with await aio_pika.connect(amqp_url) as connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await declare_sensor_exchange(channel)
        dead = await channel.get_queue(dead_letter_queue(service), ensure=True)
        while (message := await dead.get(fail=False)) is not None:
            await exchange.publish(
                aio_pika.Message(
                    message.body,
                    message_id=message.message_id,
                    content_type=message.content_type,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                routing_key=routing_key,
            )
            await message.ack()  # after the confirm: a crash between leaves a harmless copy
            moved += 1
    log.info("replayed %d dead-lettered message(s) of %s", moved, service)
    return moved
