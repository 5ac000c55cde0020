"""Channels: the shops, livestream rooms and partner sites that sell."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ledger.domain import limits, validate
from ledger.domain.ids import channel_id_for
from ledger.domain.model import Aggregate, Created
from ledger.domain.money import check_bps


class Channel(Aggregate):
    channel: str
    name: str
    fee_bps: int

    @classmethod
    def register(cls, channel: str, name: str, fee_bps: int, now: datetime) -> Channel:
        channel = validate.identifier(channel, field="channel")
        name = validate.text(name, field="name", max_chars=limits.TITLE_CHARS_MAX)
        fee_bps = check_bps(fee_bps, field="fee_bps")
        return cls._create(
            cls.Registered,
            channel_id_for(channel),
            now,
            channel=channel,
            name=name,
            fee_bps=fee_bps,
        )

    @dataclass(frozen=True)
    class Registered(Created):
        TYPE = "channel.registered"
        channel: str
        name: str
        fee_bps: int

        def apply(self, aggregate: Channel) -> None:
            aggregate.channel = self.channel
            aggregate.name = self.name
            aggregate.fee_bps = self.fee_bps


Channel.Registered.AGGREGATE = Channel
