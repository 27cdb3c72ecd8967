"""Codes the rule tests of several rules share: the symptoms the rules are about and the drugs
that bring them in on the order hooks."""

from __future__ import annotations

from tests.support.fhir import RX, SNOMED, concept

CRAMP = concept(SNOMED, "449918009", "Cramp in lower leg")
RLS = concept(SNOMED, "32914008", "Restless legs")
GABAPENTIN = concept(RX, "310431", "gabapentin 300 MG Oral Capsule")
BACLOFEN = concept(RX, "1292", "baclofen")
QUININE = concept(RX, "997010", "quinine sulfate 324 MG Oral Capsule")
ACETAMINOPHEN = concept(RX, "161", "acetaminophen")
