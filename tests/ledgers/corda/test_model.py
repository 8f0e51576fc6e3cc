"""Pure model: serialisation, keys and signatures, names, transaction rules."""

from __future__ import annotations

import contextlib
import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kakehashi.errors import (
    ContractRejection,
    InvalidTransactionError,
    SerializationError,
    SignatureError,
)
from kakehashi.ledgers.corda.merkle import ComponentGroup, transaction_id
from kakehashi.ledgers.corda.model.crypto import (
    KeyPair,
    PublicKey,
    SignatureScheme,
    random_bytes,
    sign_transaction_id,
)
from kakehashi.ledgers.corda.model.identity import Party, X500Name
from kakehashi.ledgers.corda.model.parameters import NetworkParameters, NotaryInfo
from kakehashi.ledgers.corda.model.serialization import deserialize, serialize
from kakehashi.ledgers.corda.model.states import (
    Command,
    StateAndRef,
    StateRef,
    TimeWindow,
    TransactionState,
)
from kakehashi.ledgers.corda.model.transactions import (
    LedgerTransaction,
    SignedTransaction,
    WireTransaction,
    notarisation_view,
)
from kakehashi.ledgers.corda.tokens.model import (
    FUNGIBLE_TOKEN_CONTRACT,
    Amount,
    FungibleToken,
    IssuedTokenType,
    IssueTokenCommand,
    MoveTokenCommand,
    RedeemTokenCommand,
    TokenType,
)

NOTARY_KEY = KeyPair.generate()
NOTARY = Party(X500Name.parse("O=Notary, L=Zurich, C=CH"), NOTARY_KEY.public)
ISSUER_KEY = KeyPair.generate(SignatureScheme.ECDSA_SECP256K1)
ISSUER = Party(X500Name.parse("O=Issuer, L=Tokyo, C=JP"), ISSUER_KEY.public)
ALICE_KEY = KeyPair.generate()
ALICE = Party(X500Name.parse("O=Alice, L=London, C=GB"), ALICE_KEY.public)
BOB = Party(X500Name.parse("O=Bob, L=Paris, C=FR"), KeyPair.generate().public)
TOKEN = IssuedTokenType(ISSUER, TokenType("USD", 2))


def token_state(quantity: int, holder: Party, encumbrance: int | None = None) -> TransactionState:
    return TransactionState(
        FungibleToken(Amount(quantity, TOKEN), holder), FUNGIBLE_TOKEN_CONTRACT, NOTARY, encumbrance
    )


def some_ref(index: int = 0) -> StateRef:
    return StateRef(bytes(range(32)), index)


# -- serialisation ---------------------------------------------------------------------------


def test_serialisation_is_deterministic_and_round_trips() -> None:
    state = token_state(5, ALICE)
    assert serialize(state) == serialize(token_state(5, ALICE))
    assert deserialize(serialize(state), TransactionState) == state


def test_serialisation_refuses_unknown_types_and_wrong_field_types() -> None:
    import cbor2

    with pytest.raises(SerializationError, match="unknown serialised type"):
        deserialize(cbor2.dumps({"$t": "os.system", "cmd": "x"}))
    good = cbor2.loads(serialize(some_ref()))
    good["index"] = "zero"
    with pytest.raises(SerializationError, match="wrong type"):
        deserialize(cbor2.dumps(good))
    good["index"] = -1
    with pytest.raises(SerializationError, match="negative"):
        deserialize(cbor2.dumps(good))
    with pytest.raises(SerializationError):
        deserialize(b"\xff\x00garbage")
    with pytest.raises(SerializationError, match="expected StateRef"):
        deserialize(serialize(ALICE), StateRef)


@given(st.binary(max_size=64))
def test_deserialise_never_crashes_on_garbage(data: bytes) -> None:
    with contextlib.suppress(SerializationError):
        deserialize(data)


# -- keys, signatures, names -----------------------------------------------------------------


@pytest.mark.parametrize("scheme", list(SignatureScheme))
def test_signatures_cover_id_and_metadata(scheme: SignatureScheme) -> None:
    key = KeyPair.generate(scheme)
    tx_id = random_bytes(32)
    sig = sign_transaction_id(key, tx_id)
    sig.verify(tx_id)
    with pytest.raises(SignatureError):
        sig.verify(random_bytes(32))
    lied = dataclasses.replace(sig, metadata=dataclasses.replace(sig.metadata, platform_version=9))
    with pytest.raises(SignatureError):
        lied.verify(tx_id)
    assert PublicKey.from_text(key.public.to_text()) == key.public
    assert KeyPair.from_text(key.to_text()).public == key.public


def test_ed25519_matches_rfc8032_test_vector_2() -> None:
    """RFC 8032 section 7.1, TEST 2 (a one-byte message)."""
    key = KeyPair(
        SignatureScheme.ED25519,
        bytes.fromhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"),
    )
    assert key.public.encoded.hex() == (
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"
    )
    signature = bytes.fromhex(
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
    )
    assert key.sign(bytes([0x72])) == signature
    key.public.verify(signature, bytes([0x72]))
    for bad in (signature[:-1], signature[:-1] + b"\x01", b""):
        with pytest.raises(SignatureError):
            key.public.verify(bad, bytes([0x72]))
    with pytest.raises(InvalidTransactionError):
        KeyPair(SignatureScheme.ED25519, b"short")


def test_x500_names() -> None:
    name = X500Name.parse("C=GB, O=Bank A, L=London")
    assert str(name) == "O=Bank A, L=London, C=GB"
    assert X500Name.parse(str(name)) == name
    for bad in ("O=Bank A", "O=Bank A, L=London, C=Britain", "X=1, O=A, L=B, C=GB", "nonsense"):
        with pytest.raises(InvalidTransactionError):
            X500Name.parse(bad)


# -- transaction structure and id ------------------------------------------------------------


def issue_wtx(*outputs: TransactionState) -> WireTransaction:
    return WireTransaction.create(
        privacy_salt=random_bytes(),
        outputs=outputs or [token_state(10, ALICE)],
        commands=[Command(IssueTokenCommand(TOKEN), (ISSUER.owning_key,))],
    )


def test_transaction_id_follows_the_component_merkle_tree() -> None:
    wtx = issue_wtx()
    assert wtx.id == transaction_id(wtx.component_groups, wtx.privacy_salt)
    assert set(wtx.component_groups) == {
        ComponentGroup.OUTPUTS,
        ComponentGroup.COMMANDS,
        ComponentGroup.SIGNERS,
    }
    copy = deserialize(serialize(wtx), WireTransaction)
    assert copy.id == wtx.id and copy.outputs == wtx.outputs


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"commands": [Command(IssueTokenCommand(TOKEN), (ISSUER.owning_key,))]},
            "input or output",
        ),
        ({"outputs": [token_state(1, ALICE)]}, "at least one command"),
        (
            {
                "inputs": [some_ref()],
                "outputs": [token_state(1, ALICE)],
                "commands": [Command(MoveTokenCommand(TOKEN), (ALICE.owning_key,))],
            },
            "notary",
        ),
        (
            {
                "outputs": [token_state(1, ALICE)],
                "time_window": TimeWindow(0, 10),
                "commands": [Command(IssueTokenCommand(TOKEN), (ISSUER.owning_key,))],
            },
            "notary",
        ),
        (
            {
                "inputs": [some_ref(), some_ref()],
                "notary": NOTARY,
                "commands": [Command(MoveTokenCommand(TOKEN), (ALICE.owning_key,))],
            },
            "same input twice",
        ),
    ],
)
def test_structural_rules(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidTransactionError, match=message):
        WireTransaction.create(privacy_salt=random_bytes(), **kwargs)  # type: ignore[arg-type]


def test_empty_group_and_bad_salt_refused() -> None:
    wtx = issue_wtx()
    with pytest.raises(InvalidTransactionError):
        WireTransaction({**wtx.component_groups, ComponentGroup.INPUTS: ()}, wtx.privacy_salt)
    with pytest.raises(InvalidTransactionError):
        WireTransaction(wtx.component_groups, bytes(32))


def test_required_signers_include_notary_only_when_needed() -> None:
    issue = issue_wtx()
    assert issue.required_signing_keys() == {ISSUER.owning_key}
    move = WireTransaction.create(
        privacy_salt=random_bytes(),
        inputs=[some_ref()],
        outputs=[token_state(1, BOB)],
        commands=[Command(MoveTokenCommand(TOKEN), (ALICE.owning_key,))],
        notary=NOTARY,
    )
    assert move.required_signing_keys() == {ALICE.owning_key, NOTARY.owning_key}
    stx = SignedTransaction(move, (sign_transaction_id(ALICE_KEY, move.id),))
    stx.verify_signatures(allowed_missing={NOTARY.owning_key})
    with pytest.raises(SignatureError, match="missing"):
        stx.verify_signatures()
    stx.with_signatures(sign_transaction_id(NOTARY_KEY, move.id)).verify_signatures()


def test_notarisation_tear_off_hides_outputs_and_commands() -> None:
    wtx = WireTransaction.create(
        privacy_salt=random_bytes(),
        inputs=[some_ref()],
        outputs=[token_state(1, BOB)],
        commands=[Command(MoveTokenCommand(TOKEN), (ALICE.owning_key,))],
        notary=NOTARY,
        time_window=TimeWindow(until_time=10**18),
    )
    ftx = wtx.notarisation_tear_off()
    assert ftx.id == wtx.id
    assert ftx.components(ComponentGroup.OUTPUTS) == ()
    view = notarisation_view(ftx)
    assert view.inputs == (some_ref(),) and view.notary == NOTARY
    assert deserialize(serialize(ftx)) == ftx


# -- ledger rules and the token contract ----------------------------------------------------


def ledger(
    inputs: list[TransactionState],
    outputs: list[TransactionState],
    command: object,
    signers: tuple[PublicKey, ...],
    notary: Party | None = NOTARY,
) -> LedgerTransaction:
    return LedgerTransaction(
        id=random_bytes(32),
        inputs=tuple(StateAndRef(s, some_ref(i)) for i, s in enumerate(inputs)),
        outputs=tuple(outputs),
        commands=(Command(command, signers),),  # type: ignore[arg-type]
        attachments=(),
        notary=notary if inputs else None,
        time_window=None,
        references=(),
    )


def test_token_rules() -> None:
    ledger([], [token_state(5, ALICE)], IssueTokenCommand(TOKEN), (ISSUER.owning_key,)).verify()
    with pytest.raises(ContractRejection, match="issuer must sign"):
        ledger([], [token_state(5, ALICE)], IssueTokenCommand(TOKEN), (ALICE.owning_key,)).verify()
    with pytest.raises(ContractRejection, match="positive"):
        ledger([], [token_state(0, ALICE)], IssueTokenCommand(TOKEN), (ISSUER.owning_key,)).verify()
    ins = [token_state(5, ALICE), token_state(3, ALICE)]
    ledger(ins, [token_state(8, BOB)], MoveTokenCommand(TOKEN), (ALICE.owning_key,)).verify()
    with pytest.raises(ContractRejection, match="conserve"):
        ledger(ins, [token_state(9, BOB)], MoveTokenCommand(TOKEN), (ALICE.owning_key,)).verify()
    with pytest.raises(ContractRejection, match="holder"):
        ledger(ins, [token_state(8, BOB)], MoveTokenCommand(TOKEN), (BOB.owning_key,)).verify()
    both = (ALICE.owning_key, ISSUER.owning_key)
    ledger(ins, [token_state(2, ALICE)], RedeemTokenCommand(TOKEN), both).verify()
    with pytest.raises(ContractRejection, match="issuer must sign"):
        ledger(ins, [], RedeemTokenCommand(TOKEN), (ALICE.owning_key,)).verify()
    with pytest.raises(ContractRejection, match="at most one"):
        ledger(
            ins, [token_state(1, ALICE), token_state(1, ALICE)], RedeemTokenCommand(TOKEN), both
        ).verify()
    with pytest.raises(ContractRejection, match="exactly one token command"):
        ledger(
            ins,
            [token_state(8, BOB)],
            IssueTokenCommand(IssuedTokenType(BOB, TokenType("EUR"))),
            (BOB.owning_key,),
        ).verify()


def test_notary_consistency_and_network_parameters() -> None:
    other = Party(X500Name.parse("O=Other Notary, L=Oslo, C=NO"), KeyPair.generate().public)
    moved = TransactionState(FungibleToken(Amount(5, TOKEN), BOB), FUNGIBLE_TOKEN_CONTRACT, other)
    with pytest.raises(InvalidTransactionError, match="names notary"):
        ledger(
            [token_state(5, ALICE)], [moved], MoveTokenCommand(TOKEN), (ALICE.owning_key,)
        ).verify()
    params = NetworkParameters(1, (NotaryInfo(NOTARY, False),))
    issue = ledger([], [moved], IssueTokenCommand(TOKEN), (ISSUER.owning_key,))
    with pytest.raises(InvalidTransactionError, match="not one of the network's notaries"):
        issue.verify(params)


def test_encumbrances() -> None:
    cmd, signers = IssueTokenCommand(TOKEN), (ISSUER.owning_key,)
    # A loop of two encumbered outputs is fine; a dangling or self encumbrance is not.
    ledger([], [token_state(1, ALICE, 1), token_state(1, ALICE, 0)], cmd, signers).verify()
    for outputs in (
        [token_state(1, ALICE, 1), token_state(1, ALICE)],
        [token_state(1, ALICE, 0)],
        [token_state(1, ALICE, 5)],
    ):
        with pytest.raises(InvalidTransactionError, match="encumb"):
            ledger([], outputs, cmd, signers).verify()
    # Consuming an encumbered input requires consuming its encumbrance too.
    encumbered = [token_state(4, ALICE, encumbrance=7)]
    with pytest.raises(InvalidTransactionError, match="encumbered by output 7"):
        ledger(
            encumbered, [token_state(4, BOB)], MoveTokenCommand(TOKEN), (ALICE.owning_key,)
        ).verify()


def test_unknown_contract_is_refused() -> None:
    rogue = TransactionState(FungibleToken(Amount(1, TOKEN), ALICE), "com.evil.Contract", NOTARY)
    with pytest.raises(InvalidTransactionError, match="no contract named"):
        ledger([], [rogue], IssueTokenCommand(TOKEN), (ISSUER.owning_key,)).verify()
