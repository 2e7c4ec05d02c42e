"""Register weights: how much more (or less) often a character or character pair appears in a
written summary than in the spoken text it summarises.

Spoken Chinese carries deixis and discourse markers (这个, 那么, 就是说, 对吧, 你, 我觉得) that a
summary, written in a neutral register, almost never copies, and it under-uses the connectives
and nominalisations (以及, 与, 需要, 化, 性) that summaries are made of. The summariser uses the
mean weight of a candidate's characters and character pairs as one cue of how much of it a
summary would keep.

The table below was fitted once, with :func:`fit_register`, on the 135 ``dev`` rows of VCSum
(Wu et al., Findings of ACL 2023; MIT licence; see ``/work/shared/eval/summ/README.md``) and is
held fixed; the 136 ``test`` rows were not used. Each weight is the smoothed log ratio of a
token's share in the reference summaries to its share in the transcripts, rounded to steps of
0.5; tokens seen fewer than 20 times in the transcripts, or in fewer than a quarter of them, and
weights that round to 0, are left out. Only single CJK characters and pairs of them are kept:
Latin words and numbers in meetings are topical, not a matter of register. The quarter rule is
there for the same reason: a name or topic word that fills a few meetings (北京, a speaker's
surname) says nothing about register, and fitted without the rule the table learned such words,
scoring 2 points of ROUGE-1 higher on the rows it was fitted on than on held-out meetings (a table
fitted on half the dev meetings, scored on the other half: ROUGE-1/2/L 40.3 / 18.0 / 23.7
without the rule, 40.3 / 18.4 / 24.4 with it, 41.2 / 19.4 / 25.1 with the summariser's weights
re-tuned the same cross-fitted way by ``scripts/tune_summ.py``). Re-fit with
``speechqa eval summ vcsum --fit-register``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from itertools import pairwise

from models.rouge import tokens

__all__ = ["REGISTER_CHARS", "REGISTER_PAIRS", "fit_register"]

# Pseudo-count added to both sides of a ratio: a token never seen in a summary is not -inf.
_SMOOTHING = 5.0


def _cjk(token: str) -> bool:
    return len(token) == 1 and not token.isascii() and not token.isdigit()


def fit_register(
    pairs: Iterable[tuple[str, str]],
    *,
    min_count: int = 20,
    step: float = 0.5,
    min_text_share: float = 0.25,
) -> tuple[dict[str, float], dict[str, float]]:
    """Fit character and character-pair weights from ``(text, summary)`` pairs.

    Returns ``(chars, pairs)``: token -> rounded smoothed log ratio of its relative frequency in
    the summaries to that in the texts, for tokens seen at least ``min_count`` times in the texts
    and in at least ``min_text_share`` of the texts.
    """
    text1: Counter[str] = Counter()
    summ1: Counter[str] = Counter()
    text2: Counter[str] = Counter()
    summ2: Counter[str] = Counter()
    texts: Counter[str] = Counter()  # how many texts each token occurs in
    n_pairs = 0
    for text, summary in pairs:
        n_pairs += 1
        t, s = tokens(text), tokens(summary)
        texts.update(set(t) | {a + b for a, b in pairwise(t)})
        text1.update(t)
        summ1.update(s)
        text2.update(a + b for a, b in pairwise(t) if _cjk(a) and _cjk(b))
        summ2.update(a + b for a, b in pairwise(s) if _cjk(a) and _cjk(b))

    def weights(text_counts: Counter[str], summ_counts: Counter[str]) -> dict[str, float]:
        n_text = sum(text_counts.values()) or 1
        n_summ = sum(summ_counts.values()) or 1
        out = {}
        for token, count in text_counts.items():
            if (
                count < min_count
                or texts[token] < min_text_share * n_pairs
                or not all(_cjk(c) for c in token)
            ):
                continue
            summ_share = (summ_counts[token] + _SMOOTHING * n_summ / n_text) / n_summ
            text_share = (count + _SMOOTHING) / n_text
            weight = round(math.log(summ_share / text_share) / step) * step
            if weight:
                out[token] = weight
        return out

    return weights(text1, summ1), weights(text2, summ2)


def table_source(chars: dict[str, float], pairs: dict[str, float]) -> str:
    """The two tables as the ``_CHARS`` / ``_PAIRS`` literals of this module."""

    def block(name: str, table: dict[str, float], sep: str) -> list[str]:
        lines = [f"{name}: dict[float, str] = {{"]
        for weight in sorted(set(table.values())):
            members = sorted(t for t, w in table.items() if w == weight)
            body = sep.join(members)
            # Keep source lines short (a CJK character is two columns wide): wrap long groups
            # over several string pieces, which Python joins back.
            chunks = [body[i : i + 40] for i in range(0, len(body), 40)]
            lines.append(f"    {weight!r}: (")
            lines.extend(f"        {chunk!r}" for chunk in chunks)
            lines.append("    ),")
        lines.append("}")
        return lines

    return "\n".join([*block("_CHARS", chars, ""), "", *block("_PAIRS", pairs, " ")]) + "\n"


def _expand(groups: dict[float, str], pairs: bool) -> dict[str, float]:
    out: dict[str, float] = {}
    for weight, members in groups.items():
        for token in members.split() if pairs else members:
            out[token] = weight
    return out


# Generated by table_source(fit_register(...)); do not edit by hand.
# fmt: off
_CHARS: dict[float, str] = {
    -5.5: (
        '你'
    ),
    -5.0: (
        '谢那'
    ),
    -4.5: (
        '刚吧'
    ),
    -4.0: (
        '呢'
    ),
    -3.5: (
        '么叫咱您'
    ),
    -3.0: (
        '北吗宾月肯话说'
    ),
    -2.5: (
        '什它怎拿讲许谓这'
    ),
    -2.0: (
        '几就我括样'
    ),
    -1.5: (
        '个些们单又听告嘉士天张往得微总没海简觉言讨请越跟边里'
    ),
    -1.0: (
        '一今他候其包十只后哪太头如尤年底彩想所是果某热然甚种绍至近还部都院'
    ),
    -0.5: (
        '不东之也书了事享仅件但位做像先再别到去友史各因图圆在地够大好始实家已布常当很感或'
        '才报无日早最有朋来欢正比民清点白看真空第等算织老表被西见试该语谈道门际除随非'
    ),
    0.5: (
        '中为主乐于五交人介代价任企传作信借值入全公共关兴具养内况列创利制加务势区反发取台'
        '司向员响商围国场块型域基境处备学安定容富层市希带广应度开引强形影必快念思息情成战'
        '手打找持据授探控推提播收放政数整文断新施明易景望期未术机校格次步水治活流济满片物'
        '特状环理生用由电界略益相研社神科程策类精素索紧线终结统维网置美而联艺节英营落虑行'
        '观视解认设证评课调足路较进通速量金针键长阶难集音项领验高'
    ),
    1.0: (
        '与业互产优体使供促保准力功动助化升协变合同命和品善城培字存客导局展帮平并康建式德'
        '心态性户技投择指支改效教普智更服极构标核根案模此求注源率目础积突立系续育色融要规'
        '识质资趣践转运适选造重链限'
    ),
    1.5: (
        '低健及增将需革'
    ),
}

_PAIRS: dict[float, str] = {
    -5.5: (
        '那么'
    ),
    -5.0: (
        '那个'
    ),
    -4.5: (
        '刚才 是说 是这 的话 的这 的那'
    ),
    -4.0: (
        '一下 个就 个我 么样 们这 如说 对吧 我想 的就 说我 谢谢 那我'
    ),
    -3.5: (
        '个这 为什 么我 么这 们也 们现 你们 到这 后我 咱们 它是 它的 实我 当'
        '然 得这 感谢 我就 我是 我的 是什 是从 是吧 是我 样的 看到 等等 讲的'
        ' 说的 说这 这个 这么 这里 那这'
    ),
    -3.0: (
        '一次 上我 下来 个东 个大 个数 个新 个时 么一 么呢 之前 也好 了就 了'
        '那 于这 以说 们可 们有 们说 你的 候我 做这 发现 外一 好我 家都 对我'
        ' 就说 当时 得我 我也 我认 把它 是他 是你 是很 是那 点就 真的 确实 '
        '给我 肯定 觉得 让我 话我 话题 该是 说一 说你 说是 过这 还是 这些 题'
        '就 题我'
    ),
    -2.5: (
        '下这 下面 不会 个事 个发 个可 个工 个的 个话 了这 享一 什么 他是 代'
        '的 以我 们不 们做 们在 们还 像我 关的 其实 其是 后就 在这 天我 好像'
        ' 好谢 好那 实也 实在 实这 尤其 就不 就这 常感 常的 得是 我我 我觉 '
        '我说 我这 才我 是个 是大 是就 是怎 是现 有可 有没 本上 的其 的因 的'
        '然 看这 能就 话就 说在 说就 跟我 那些 那就 题那'
    ),
    -2.0: (
        '一点 不是 个对 个问 了我 以这 们就 但是 各位 在我 实是 对这 就是 怎'
        '么 我们 有这 样一 然后 的我 者是 讨论 还有 这样 这种 里面'
    ),
    -1.5: (
        '一个 专家 个一 个是 个比 中我 为这 之后 也就 也有 二个 今天 从这 他'
        '的 们是 几个 出来 包括 变成 可能 因为 在的 基本 大家 如果 定是 意思'
        ' 或者 所以 把这 时候 是可 是因 是在 是有 有一 来我 来讲 来说 比如 '
        '的一 的时 真正 知道 简单 者说 能是 观点 过去 部分 都是 际上 面我'
    ),
    -1.0: (
        '一些 一种 上来 上的 下我 不管 个不 个主 个在 个学 个很 个过 个非 为'
        '我 么在 也不 也在 也是 了一 介绍 们一 们今 们的 们都 会有 分享 到了'
        ' 到的 参加 只有 型的 实际 就可 已经 年的 当中 很重 成一 括我 提出 '
        '是一 是不 是以 是把 是比 是没 是要 是非 有个 来了 每一 没有 特别 现'
        '在 甚至 的内 的在 的对 的是 的最 的比 相对 能会 这一 这两 这方 这是'
        ' 都在 都有 除了 非常 面的'
    ),
    -0.5: (
        '一定 一样 一直 一起 上是 上面 不一 东西 个方 也很 了很 事情 他们 以'
        '后 作的 做一 做了 做的 关于 到一 到我 动的 另外 各个 在做 多的 完全'
        ' 实就 就会 应该 开始 很多 很有 心的 意义 所有 提到 方面 时间 是中 '
        '是如 是对 是最 最大 有很 有的 朋友 来的 来这 比较 的但 的好 的工 的'
        '很 的所 的有 的老 科学 第一 第三 第二 组织 老师 而且 能不 能够 题是'
        ' 题的'
    ),
    0.5: (
        '一步 下的 不同 不要 业的 为一 为了 主要 主题 了解 人的 传统 体的 作'
        '为 信息 公司 关系 关键 其中 出现 创新 国家 子的 定的 对于 层面 展的'
        ' 师的 希望 常重 度来 开发 影响 思考 情况 才能 数据 新的 方法 时代 '
        '更好 未来 术的 机会 每个 活动 环境 理解 生活 用的 的主 的事 的关 的'
        '发 的可 的大 的情 的教 的生 的经 的过 的问 社会 程中 管理 系统 线上'
        ' 经济 经验 考虑 要是 要有 角度 解决 认为 进行 通过 重要 长的 阶段 '
        '项目'
    ),
    1.0: (
        '也可 产生 价值 作用 共同 关注 内容 化的 发展 合作 培养 基础 学校 学'
        '生 实践 市场 平台 建设 成为 成长 技术 提高 教育 数字 文化 方式 更加'
        ' 更多 服务 核心 生的 的作 的思 的成 的理 的能 目前 目标 知识 育的 '
        '能力 行业 资源 选择 需求 领域'
    ),
    1.5: (
        '中心 以及 体系 同时 存在 实现 帮助 提供 提升 结合 融合 需要'
    ),
}
# fmt: on

REGISTER_CHARS: dict[str, float] = _expand(_CHARS, pairs=False)
REGISTER_PAIRS: dict[str, float] = _expand(_PAIRS, pairs=True)
