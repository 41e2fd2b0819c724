#!/usr/bin/env python3
"""The encoder benchmark's input: N English-like sentences of 8-64 words, one JSON string a line.

    scripts/bench_sentences.py [--count 1000] [--seed 17] > sentences.jsonl

Deterministic (a fixed seed and word lists, Python's own random module): the same file on every
machine. Lengths are uniform in [8, 64] words; each sentence is a capitalised run of words from a
small vocabulary of common English words (so WordPiece splits them as real text), with a comma now
and then and a full stop at the end. Used by scripts/bench-llm (attnax embed on all-MiniLM-L6-v2).
"""

import argparse
import json
import random

WORDS = """the of and to in is was for on that with as by at from his her they this which be have had are not
but were one all their there been has when who will more no if out so said what up its about into than them
can only other new some could time these two may then do first any my now such like our over man me even most
made after also did many before must through back years where much your way well down should because each just
those people how too little state good very make world still own see men work long get here between both life
being under never day same another know while last might us great old year off come since against go came right
used take three states himself few house use during without again place american around however home small found
thought went say part once general high upon school every don does got united left number course war until always
away something fact though water less public put think almost hand enough far took head yet government system
better set told nothing night end why called didn eyes find going look asked later knew point next city business
give group toward young days let room president side social given present several order national possible rather
second face per among form important often things looked early white case john become large big need four within
felt along children saw best church ever least power development light seemed family interest want members mind
country area others done turned although open god service certain kind problem began different door thus help
sense means whole matter perhaps itself york times human law line above name example action company hands local
show whether five history gave today either act feet across taken past quite anything seen having death week
experience body word half really field car words already themselves information tell college shall together money
period held keep sure probably free seems political real behind cannot miss question air office making brought
whose special major heard problems ago became federal moment study available known result street economic boy
position reason change south board individual job areas society west close turn love community true court force
full seem am wife future age voice center woman control common necessary policy following front sometimes six
girl clear further land run students provide""".split()


def sentence(rng: random.Random) -> str:
  n = rng.randint(8, 64)
  words = [rng.choice(WORDS) for _ in range(n)]
  for i in range(3, n - 2):
    if rng.random() < 0.06:
      words[i] += ","
  words[0] = words[0].capitalize()
  return " ".join(words) + "."


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--count", type=int, default=1000)
  ap.add_argument("--seed", type=int, default=17)
  args = ap.parse_args()
  rng = random.Random(args.seed)
  for _ in range(args.count):
    print(json.dumps(sentence(rng)))


if __name__ == "__main__":
  main()
