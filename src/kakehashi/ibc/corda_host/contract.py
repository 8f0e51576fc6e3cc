"""The host state's contract: one history of versions, each signed by the host operator.

Rules of :data:`~kakehashi.lightclients.corda.HOST_CONTRACT`, for a transaction holding host
states (:class:`~kakehashi.lightclients.corda.IbcHostState`):

* exactly one host command (:class:`HostGenesis` or :class:`HostAdvance`), signed by the
  operator of the host state it produces;
* **Genesis**: no host state consumed, exactly one produced, at version 1 with the empty
  sparse-Merkle root;
* **Advance**: exactly one host state consumed and one produced, with the same linear id and
  operator, ``version = previous version + 1`` (the command names it) and a later timestamp;
* every produced host state is unencumbered, names this contract, and its timestamp lies inside
  the transaction's time window (so the notary, which checks its clock against the window,
  vouches for the host's time);
* the produced host state is output 0 and the consumed one input 0: a host transaction may also
  move the host's applications' states (after the host's), and a light client that sees only
  the inputs' references finds the previous version first.

The notary makes the chain a single history: version ``v`` can be consumed only once.
"""

from __future__ import annotations

from dataclasses import dataclass

from kakehashi.ledgers.corda.model.contracts import contract, require
from kakehashi.ledgers.corda.model.serialization import serializable
from kakehashi.ledgers.corda.model.states import CommandData
from kakehashi.ledgers.corda.model.transactions import LedgerTransaction
from kakehashi.ledgers.corda.smt import EMPTY_ROOT
from kakehashi.lightclients.corda import HOST_CONTRACT, IbcHostState

__all__ = ["GENESIS_VERSION", "CordaHostContract", "HostAdvance", "HostCommand", "HostGenesis"]

GENESIS_VERSION = 1


class HostCommand(CommandData):
    """Marker base of the host contract's commands."""


@serializable("ibc.corda.HostGenesis")
@dataclass(frozen=True, slots=True)
class HostGenesis(HostCommand):
    """Create the host at version 1 with an empty store."""


@serializable("ibc.corda.HostAdvance")
@dataclass(frozen=True, slots=True)
class HostAdvance(HostCommand):
    """Move the host to ``version`` (one IBC state change)."""

    version: int


@contract(HOST_CONTRACT)
class CordaHostContract:
    """The host state's rules (see the module docstring)."""

    def verify(self, tx: LedgerTransaction) -> None:
        commands = tx.commands_of_type(HostCommand)
        require(len(commands) == 1, "a host transaction needs exactly one host command")
        command = commands[0]
        ins = tx.inputs_of_type(IbcHostState)
        outs = tx.outputs_of_type(IbcHostState)
        for output in tx.outputs:
            if isinstance(output.data, IbcHostState):
                require(
                    output.contract == HOST_CONTRACT, "a host state must name the host contract"
                )
                require(output.encumbrance is None, "a host state must not be encumbered")
        require(len(outs) == 1, "a host transaction produces exactly one host state")
        out = outs[0]
        require(tx.outputs[0].data is out, "the host state must be the transaction's output 0")
        require(
            out.operator.owning_key in command.signers,
            "the host operator must sign every host transaction",
        )
        require(len(out.smt_root) == 32, "the host state's root must be 32 bytes")
        window = tx.time_window
        require(window is not None, "a host transaction needs a time window (notarised time)")
        assert window is not None
        require(
            window.from_time is not None and window.until_time is not None,
            "a host transaction's time window must be bounded",
        )
        require(
            window.contains(out.timestamp_ns // 1000),
            "the host state's timestamp must lie inside the transaction's time window",
        )
        if isinstance(command.value, HostGenesis):
            require(not ins, "a host genesis consumes no host state")
            require(out.version == GENESIS_VERSION, f"a host starts at version {GENESIS_VERSION}")
            require(out.smt_root == EMPTY_ROOT, "a host starts with an empty store")
        elif isinstance(command.value, HostAdvance):
            require(len(ins) == 1, "a host transaction consumes exactly one host state")
            previous = ins[0]
            require(
                tx.inputs[0].state.data is previous,
                "the consumed host state must be the transaction's input 0",
            )
            require(out.linear_id == previous.linear_id, "the host's linear id cannot change")
            require(out.operator == previous.operator, "the host's operator cannot change")
            require(
                out.version == previous.version + 1 == command.value.version,
                f"the next host version must be {previous.version + 1}",
            )
            require(out.timestamp_ns > previous.timestamp_ns, "the host's time must move forward")
        else:
            require(False, f"unknown host command {type(command.value).__name__}")
