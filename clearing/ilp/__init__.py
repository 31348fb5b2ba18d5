"""Sans-I/O interledger codecs: OER, ILPv4 and 2017 ILPv1 packets, addresses, conditions.

No network, reactor or database imports here: everything turns bytes into values and
values into bytes, and every bad input raises an ``IlpCodecError`` subclass.
"""

from clearing.ilp.addresses import IlpAddress, InvalidIlpAddress, dfsp_account_address
from clearing.ilp.conditions import (
    ConditionError,
    PreimageCondition,
    PreimageFulfillment,
    condition_for,
    fulfills,
)
from clearing.ilp.oer import IlpCodecError, OerError
from clearing.ilp.packets import (
    Fulfill,
    IlpPacketError,
    Packet,
    Prepare,
    Reject,
    decode_packet,
    encode_packet,
)

__all__ = [
    "ConditionError",
    "Fulfill",
    "IlpAddress",
    "IlpCodecError",
    "IlpPacketError",
    "InvalidIlpAddress",
    "OerError",
    "Packet",
    "PreimageCondition",
    "PreimageFulfillment",
    "Prepare",
    "Reject",
    "condition_for",
    "decode_packet",
    "dfsp_account_address",
    "encode_packet",
    "fulfills",
]
