"""The demo data set: a fictional prefecture-level city, 江州市, with its finance office,
central-bank branch, referring bureaus, banks and an insurer, their people, about twenty
advisors and 300 small firms.

Everything goes through the domain services, so validation, derived size classes and the audit
trail apply exactly as for real input. ``seed_demo`` flushes but never commits: the caller (the
``demo seed`` command or ``python run.py``) commits once. The data are deterministic: one
``random.Random(2026)`` drives every choice, so two seeds of an empty database are identical.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select

from models import (
    AdvisorProfile,
    Enterprise,
    FinancingApplication,
    Organisation,
    PolicyTool,
    Referral,
    ReferralBureau,
    ReferralEvent,
    Township,
    User,
    Visit,
    db,
    utcnow,
)

from . import clock, security
from .credit_code import ALPHABET, make_code
from .errors import DomainError
from .i18n import SHANGHAI

#: One password for every demo account. It is printed on start-up, so it is no secret at all:
#: a demo database must never hold real data.
DEMO_PASSWORD = "Demo-2026!"  # noqa: S105 (a published demo password)

#: One sign-in per role, printed by ``python run.py``: (username, password, role label).
DEMO_LOGINS: list[tuple[str, str, str]] = [
    ("admin", DEMO_PASSWORD, "管理员"),
    ("jrb", DEMO_PASSWORD, "金融办"),
    ("rhzh", DEMO_PASSWORD, "人民银行"),
    ("gxj", DEMO_PASSWORD, "工信局"),
    ("zhangwei", DEMO_PASSWORD, "金融顾问"),
    ("lly_abc", DEMO_PASSWORD, "联络员"),
]

SEED = 2026
FIRM_COUNT = 300

# ------------------------------------------------------------------ the city
# Administrative divisions (GB/T 2260 style) of the fictional city: province 32, a prefecture
# number no real city uses, so no demo credit code can be a real firm's.
DISTRICTS = {
    "329002": "江城区",
    "329012": "江北区",
    "329021": "临江县",
    "329071": "高新区",
}

# (code, name); the first six digits of a code are its district.
TOWNSHIPS = (
    ("329002001", "城东街道"),
    ("329002002", "城西街道"),
    ("329002003", "城南街道"),
    ("329002004", "城北街道"),
    ("329002005", "滨江街道"),
    ("329071001", "高新区"),
    ("329012101", "江北镇"),
    ("329012102", "临港镇"),
    ("329012103", "青山镇"),
    ("329021101", "白沙镇"),
    ("329021102", "石桥镇"),
    ("329021201", "桃源乡"),
)
CODE_OF = {name: code for code, name in TOWNSHIPS}
URBAN = ("城东街道", "城西街道", "城南街道", "城北街道", "滨江街道", "高新区")
RURAL = ("江北镇", "临港镇", "青山镇", "白沙镇", "石桥镇", "桃源乡")
INDUSTRIAL = ("高新区", "临港镇", "江北镇", "城北街道", "石桥镇")

# (code, name, type, short name)
ORGS = (
    ("JZJRB", "江州市地方金融管理局（市金融办）", "finance_office", "市金融办"),
    ("PBC-JZ", "中国人民银行江州市分行", "pboc", "人民银行"),
    ("SWJ", "江州市商务局", "bureau", "商务局"),
    ("GXJ", "江州市工业和信息化局", "bureau", "工信局"),
    ("NYNCJ", "江州市农业农村局", "bureau", "农业农村局"),
    ("SCJGJ", "江州市市场监督管理局", "bureau", "市场监管局"),
    ("CYL-XNY", "江州市新能源产业链办公室", "bureau", "新能源产业链办"),
    ("ABC-JZ", "中国农业银行江州分行", "bank", "农业银行"),
    ("BOC-JZ", "中国银行江州分行", "bank", "中国银行"),
    ("PSBC-JZ", "中国邮政储蓄银行江州分行", "bank", "邮储银行"),
    ("JZRCB", "江州农村商业银行", "bank", "江州农商银行"),
    ("CCB-JZ", "中国建设银行江州分行", "bank", "建设银行"),
    ("ICBC-JZ", "中国工商银行江州分行", "bank", "工商银行"),
    ("PICC-JZ", "中国人民财产保险股份有限公司江州分公司", "insurer", "人保财险"),
)

# (username, display name, role, org code)
STAFF = (
    ("jrb", "王建国", "finance_office", "JZJRB"),
    ("jrb2", "李晓燕", "finance_office", "JZJRB"),
    ("rhzh", "周敏", "pboc", "PBC-JZ"),
    ("swj", "钱立新", "bureau", "SWJ"),
    ("gxj", "冯志刚", "bureau", "GXJ"),
    ("nyncj", "蒋春梅", "bureau", "NYNCJ"),
    ("scjgj", "沈文博", "bureau", "SCJGJ"),
    ("cyl", "韩雪", "bureau", "CYL-XNY"),
    ("lly_abc", "许文", "liaison", "ABC-JZ"),
    ("lly_boc", "杨帆", "liaison", "BOC-JZ"),
    ("lly_psbc", "曹颖", "liaison", "PSBC-JZ"),
    ("lly_rcb", "彭亮", "liaison", "JZRCB"),
    ("lly_ccb", "袁媛", "liaison", "CCB-JZ"),
    ("lly_icbc", "邓超", "liaison", "ICBC-JZ"),
    ("lly_picc", "谢晨", "liaison", "PICC-JZ"),
)

# (username, name, institution, title, note when not accepting new firms)
ADVISORS = (
    ("zhangwei", "张伟", "ABC-JZ", "普惠金融部客户经理", None),
    ("lina", "李娜", "ABC-JZ", "小微企业部经理", None),
    ("wanglei", "王磊", "ABC-JZ", "三农金融部客户经理", None),
    ("chenjing", "陈静", "ABC-JZ", "城东支行网点负责人", "产假中，暂停分派新企业"),
    ("liuyang", "刘洋", "BOC-JZ", "普惠金融部经理", None),
    ("zhaomin", "赵敏", "BOC-JZ", "客户经理", None),
    ("sunhao", "孙浩", "BOC-JZ", "公司金融部客户经理", None),
    ("zhouting", "周婷", "PSBC-JZ", "小微企业部经理", None),
    ("wuqiang", "吴强", "PSBC-JZ", "信贷客户经理", None),
    ("zhengli", "郑丽", "PSBC-JZ", "三农金融事业部客户经理", None),
    ("huangjun", "黄俊", "JZRCB", "江北支行行长", None),
    ("hefang", "何芳", "JZRCB", "信贷经理", None),
    ("lintao", "林涛", "JZRCB", "普惠金融部副经理", None),
    ("madan", "马丹", "JZRCB", "客户经理", None),
    ("gaoxiang", "高翔", "CCB-JZ", "普惠金融事业部客户经理", None),
    ("luojia", "罗佳", "CCB-JZ", "小微企业部经理", None),
    ("xupeng", "徐鹏", "ICBC-JZ", "普惠金融事业部经理", None),
    ("zhulin", "朱琳", "ICBC-JZ", "客户经理", "岗位调整交接中，暂停分派新企业"),
    ("hubin", "胡斌", "PICC-JZ", "农险部经理", None),
    ("guoyan", "郭燕", "PICC-JZ", "业务经理", None),
)

# The industries an institution's advisors tend to know.
SPECIALTY_POOLS = {
    "ABC-JZ": ("agriculture", "industry", "wholesale", "retail"),
    "BOC-JZ": ("industry", "wholesale", "software_it", "leasing_business"),
    "PSBC-JZ": ("agriculture", "retail", "catering", "wholesale"),
    "JZRCB": ("agriculture", "retail", "catering", "industry", "construction"),
    "CCB-JZ": ("industry", "construction", "software_it", "transport"),
    "ICBC-JZ": ("industry", "wholesale", "software_it", "accommodation"),
    "PICC-JZ": ("agriculture", "transport", "catering"),
}

# ------------------------------------------------------------------ firms
INDUSTRY_WEIGHTS = (
    ("industry", 24),
    ("agriculture", 15),
    ("wholesale", 14),
    ("retail", 14),
    ("software_it", 8),
    ("catering", 8),
    ("construction", 4),
    ("transport", 4),
    ("leasing_business", 3),
    ("accommodation", 2),
    ("other", 2),
    ("warehousing", 1),
    ("property_management", 1),
)

# Business words of a firm name, per industry: (enterprise words, individual-business words).
# Word lists are written as space-separated strings to keep them readable.
BUSINESS_WORDS = {
    "industry": (
        "精密机械 五金制品 电子科技 新材料科技 塑胶制品 纺织 食品 机电设备 包装材料 汽车零部件 "
        "服饰 建材 家具制造 模具 环保设备 阀门制造".split(),
        "五金加工厂 服装加工厂 木器加工厂".split(),
    ),
    "wholesale": (
        "商贸 贸易 供应链管理 物资 农产品贸易 医药贸易 建材贸易".split(),
        "批发部 粮油批发部 水产批发部".split(),
    ),
    "retail": (
        "超市 百货 医药连锁 家电销售 汽车销售服务".split(),
        "便利店 五金店 副食品店 大药房 服装店 水果店 家电商行 母婴用品店".split(),
    ),
    "catering": ("餐饮管理 餐饮服务".split(), "小吃店 面馆 饭店 土菜馆 烧烤店 早餐店".split()),
    "software_it": ("信息技术 软件科技 网络科技 数据科技 智能科技".split(), []),
    "construction": ("建筑工程 装饰工程 市政工程 安装工程".split(), ["装饰工作室"]),
    "transport": ("物流 运输 货运".split(), ["货运部"]),
    "warehousing": ("仓储服务 冷链仓储".split(), []),
    "accommodation": ("酒店管理 宾馆".split(), "旅馆 民宿".split()),
    "leasing_business": ("企业管理咨询 人力资源服务 广告传媒 设备租赁".split(), []),
    "property_management": ("物业管理 物业服务".split(), []),
    "other": ("家政服务 教育咨询 文化传播 养老服务".split(), ["家政服务部"]),
    "agriculture": ("农业发展 生态农业科技 水产养殖 苗木".split(), "家庭农场 养殖场".split()),
}
NEW_ENERGY_WORDS = "新能源科技 光伏科技 储能技术 锂电科技 电力设备".split()
COOPERATIVE_WORDS = (
    "果蔬专业合作社 水稻种植专业合作社 生猪养殖专业合作社 茶叶专业合作社 水产养殖专业合作社 "
    "苗木专业合作社 家禽养殖专业合作社 农机专业合作社".split()
)
BRANDS = (
    "恒达 鑫源 华泰 永盛 宏远 金诚 瑞丰 天润 嘉禾 同创 博远 众信 联宇 聚鑫 汇通 盛隆 佳禾 新澜 "
    "正邦 和顺 德润 润泽 安泰 立信 光明 锦程 恒信 万和 兴业 长青 明辉 卓越 星辰 云帆 启航 凯瑞 "
    "东升 海纳 远航 中科 精工 通达 华瑞 信诚 百川 弘毅 丰泽 昌盛".split()
)
FARM_BRANDS = (
    "绿源 丰收 青禾 田园 稻香 金穗 山水 翠绿 鲜之源 润田 禾丰 碧野 清溪 江畔 桃园 农乐".split()
)
SURNAMES = list(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁沈"
)
GIVEN = (
    "建国 志强 秀英 丽娟 海涛 晓燕 春梅 文博 俊杰 婷婷 伟 磊 敏 静 芳 军 勇 艳 杰 涛 明 超 霞 "
    "建华 国平 红梅 玉兰 德明 永康 立新 雪梅 小龙 佳怡 子涵 浩然 宇航 欣怡 志明 桂英 金凤 "
    "振华 卫东 爱华 淑珍 春生 秋菊 建军 新民 晓东 丽华 美玲 文静 俊峰 鹏飞".split()
)
ROADS = (
    "人民路 建设路 解放路 新华路 江滨路 工业园路 创业大道 科技路 长江路 中山路 幸福路 青年路 "
    "振兴路 滨河路 兴港路 农贸路".split()
)
VILLAGES = "东湖 西岗 南塘 北山 前进 红旗 新河 柳塘 大桥 王庄".split()
MOBILE_PREFIXES = "135 136 138 139 150 151 158 159 177 186 187 189".split()

# Figures per industry and intended size: (employees range, revenue range in 万元, assets range in
# 万元 or None to derive assets from revenue). The class itself is always derived from the figures
# (advisors/lifecycle.py); these ranges only make the derived classes land where small and micro
# firms of each industry really are.
FIGURES = {
    "industry": {
        "micro": ((3, 19), (40, 290), None),
        "small": ((20, 150), (300, 1900), None),
        "medium": ((300, 600), (2000, 9000), None),
    },
    "wholesale": {
        "micro": ((2, 12), (60, 950), None),
        "small": ((5, 19), (1000, 4800), None),
        "medium": ((20, 80), (5000, 15000), None),
    },
    "retail": {
        "micro": ((2, 9), (15, 95), None),
        "small": ((10, 45), (100, 480), None),
        "medium": ((50, 150), (500, 3000), None),
    },
    "catering": {
        "micro": ((3, 9), (20, 95), None),
        "small": ((10, 80), (100, 1500), None),
        "medium": ((100, 180), (2000, 4000), None),
    },
    "accommodation": {
        "micro": ((2, 9), (20, 95), None),
        "small": ((10, 80), (100, 1500), None),
        "medium": ((100, 180), (2000, 4000), None),
    },
    "agriculture": {
        "micro": ((2, 15), (5, 48), None),
        "small": ((5, 40), (50, 480), None),
        "medium": ((20, 90), (500, 3000), None),
    },
    "software_it": {
        "micro": ((3, 9), (10, 48), None),
        "small": ((10, 90), (50, 900), None),
        "medium": ((100, 250), (1000, 5000), None),
    },
    "construction": {
        "micro": ((5, 30), (50, 290), (50, 280)),
        "small": ((20, 150), (300, 5000), (300, 4000)),
        "medium": ((100, 400), (6000, 20000), (5000, 15000)),
    },
    "transport": {
        "micro": ((2, 19), (30, 190), None),
        "small": ((20, 150), (200, 2500), None),
        "medium": ((300, 500), (3000, 8000), None),
    },
    "warehousing": {
        "micro": ((2, 19), (20, 95), None),
        "small": ((20, 90), (100, 900), None),
        "medium": ((100, 180), (1000, 5000), None),
    },
    "leasing_business": {
        "micro": ((2, 9), (20, 200), (10, 95)),
        "small": ((10, 90), (100, 2000), (100, 5000)),
        "medium": ((100, 250), (2000, 9000), (8000, 20000)),
    },
    "property_management": {
        "micro": ((10, 99), (100, 480), None),
        "small": ((100, 290), (500, 990), None),
        "medium": ((300, 600), (1000, 3000), None),
    },
    "other": {
        "micro": ((1, 9), (10, 200), None),
        "small": ((10, 99), (100, 1500), None),
        "medium": ((100, 250), (1500, 5000), None),
    },
}
SIZE_WEIGHTS = (("micro", 52), ("small", 32), ("medium", 9), ("unknown", 7))
SHOP_SIZE_WEIGHTS = (("micro", 80), ("small", 10), ("unknown", 10))


def database_is_empty() -> bool:
    """True when no user exists yet (the demo data set may then be loaded)."""
    return not db.session.scalar(select(func.count()).select_from(User))


@contextmanager
def _one_hash_for(password: str) -> Iterator[None]:
    """While seeding, hash the shared demo password once and let every ``create_user`` reuse it.

    Argon2id at full strength costs about 0.4 s and 64 MiB per hash; forty demo users would
    spend most of the seeding time hashing the same password. Going through ``create_user``
    keeps its validation and the audit trail; only the hashing is shared. All demo accounts then
    carry the same salt, which is harmless for a password printed on the console, and would be
    wrong for real accounts: any other password is still hashed on its own.
    """
    real = security.hash_password
    shared = real(password)

    def hash_once(candidate: str) -> str:
        return shared if candidate == password else real(candidate)

    security.hash_password = hash_once
    try:
        yield
    finally:
        security.hash_password = real


def _weighted(rng: random.Random, pairs) -> str:
    keys, weights = zip(*pairs, strict=True)
    return rng.choices(keys, weights=weights)[0]


def _person(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + rng.choice(GIVEN)


def _mobile(rng: random.Random) -> str:
    return rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"


def _amount(rng: random.Random, low: int, high: int) -> Decimal:
    """A figure in 万元 with two decimals, exactly (never through float)."""
    return Decimal(rng.randint(low * 100, high * 100)).scaleb(-2)


def _figures(
    rng: random.Random, industry: str, category: str
) -> tuple[int | None, Decimal | None, Decimal | None]:
    # Individual businesses (个体工商户) are shops and stalls: micro, now and then small.
    weights = SHOP_SIZE_WEIGHTS if category == "2" else SIZE_WEIGHTS
    target = _weighted(rng, weights)
    if target == "unknown":
        # Not yet reported: either nothing at all, or only the headcount.
        return (rng.randint(2, 30) if rng.random() < 0.5 else None), None, None
    employees, revenue, assets = FIGURES[industry][target]
    x = rng.randint(*employees)
    y = _amount(rng, *revenue)
    if assets is None:
        z = (y * Decimal(rng.randint(30, 150)) / 100).quantize(Decimal("0.01"))
    else:
        z = _amount(rng, *assets)
    return x, y, z


def _body8(rng: random.Random, used: set[str]) -> str:
    """Positions 9-16 of a credit code: newer codes mostly start with MA, older ones are digits."""
    while True:
        if rng.random() < 0.65:
            body = "MA" + "".join(rng.choice(ALPHABET) for _i in range(6))
        else:
            body = f"{rng.randrange(10**8):08d}"
        if body not in used:
            used.add(body)
            return body


def _township_for(rng: random.Random, industry: str) -> tuple[str, str]:
    """(code, name) of a demo township where a firm of ``industry`` plausibly is."""
    if industry == "agriculture":
        pool = RURAL
    elif industry in ("industry", "warehousing", "transport"):
        pool = INDUSTRIAL
    elif industry == "software_it":
        pool = ("高新区", "城东街道", "滨江街道")
    else:
        pool = URBAN + RURAL[:3]
    name = rng.choice(pool)
    return CODE_OF[name], name


def _firm_identity(
    rng: random.Random, industry: str, town_code: str, town: str
) -> tuple[str, str, bool]:
    """(category of the credit code, firm name, is a new-energy firm)."""
    district = DISTRICTS[town_code[:6]]
    words, shop_words = BUSINESS_WORDS[industry]
    if industry == "agriculture":
        roll = rng.random()
        if roll < 0.6:
            return (
                "3",
                f"{town}{rng.choice(FARM_BRANDS)}{rng.choice(COOPERATIVE_WORDS)}",
                False,
            )
        if roll < 0.8:
            return "2", f"江州市{town}{_person(rng)}{rng.choice(shop_words)}", False
        return "1", f"江州市{rng.choice(FARM_BRANDS)}{rng.choice(words)}有限公司", False
    individual_share = 0.35 if industry in ("retail", "catering", "accommodation") else 0.05
    if shop_words and rng.random() < individual_share:
        owner = rng.choice(SURNAMES) + "记" if rng.random() < 0.5 else rng.choice(BRANDS)
        return "2", f"江州市{district}{owner}{rng.choice(shop_words)}", False
    if industry == "industry" and rng.random() < 0.2:
        return "1", f"江州市{rng.choice(BRANDS)}{rng.choice(NEW_ENERGY_WORDS)}有限公司", True
    return "1", f"江州市{rng.choice(BRANDS)}{rng.choice(words)}有限公司", False


def _registering_bureau(industry: str, new_energy: bool) -> str:
    """The bureau that would plausibly put the firm on its list."""
    if new_energy:
        return "cyl"
    return {
        "agriculture": "nyncj",
        "industry": "gxj",
        "software_it": "gxj",
        "wholesale": "swj",
        "retail": "swj",
        "catering": "swj",
        "accommodation": "swj",
    }.get(industry, "scjgj")


def _firm_rows(rng: random.Random, towns: dict[str, Township]) -> list[tuple[str, dict]]:
    """The 300 firms as (registering bureau username, form data) pairs."""
    used_bodies: set[str] = set()
    names: set[str] = set()
    rows = []
    while len(rows) < FIRM_COUNT:
        industry = _weighted(rng, INDUSTRY_WEIGHTS)
        town_code, town = _township_for(rng, industry)
        category, name, new_energy = _firm_identity(rng, industry, town_code, town)
        if name in names:
            continue
        names.add(name)
        employees, revenue, assets = _figures(rng, industry, category)
        if industry == "agriculture":
            address = f"江州市{town}{rng.choice(VILLAGES)}村{rng.randint(1, 12)}组"
        else:
            address = f"江州市{town}{rng.choice(ROADS)}{rng.randint(1, 388)}号"
        data = {
            "credit_code": make_code("9", category, town_code[:6], _body8(rng, used_bodies)),
            "name": name,
            "industry": industry,
            "township": towns[town_code],
            "address": address,
            "contact_name": _person(rng),
            "contact_phone": _mobile(rng),
            "employees": employees,
            "revenue_wan": revenue,
            "assets_wan": assets,
        }
        rows.append((_registering_bureau(industry, new_energy), data))
    return rows


def _townships() -> tuple[dict[str, Township], int]:
    """The demo townships by their demo code, reusing rows with that code or name."""
    existing = {}
    for town in db.session.execute(select(Township)).scalars():
        existing[town.code] = existing[town.name] = town
    townships, created = {}, 0
    for code, name in TOWNSHIPS:
        town = existing.get(code) or existing.get(name)
        if town is None:
            town = Township(code=code, name=name, active=True)
            db.session.add(town)
            created += 1
        townships[code] = town
    db.session.flush()
    return townships, created


def _visit_days(rng: random.Random, first, today) -> list:
    """One to four visit dates from the first contact, never after today."""
    days = [first]
    for _n in range(rng.randint(0, 3)):
        nxt = days[-1] + timedelta(days=rng.randint(3, 12))
        if nxt > today:
            break
        days.append(nxt)
    return days


_SUMMARIES = (
    "实地走访企业，了解生产经营和资金需求。",
    "电话回访企业负责人，跟进融资进度。",
    "参加园区政银企对接会，向企业介绍金融政策。",
    "与企业财务负责人面谈，梳理报表和纳税情况。",
)
_TOPICS = ("财务管理", "信用修复", "上市培育", "保险规划", "数字化转型")
_INFO = (
    "企业员工约{n}人，订单较上年增长，流动资金偏紧。",
    "企业反映原材料价格上涨，回款周期拉长。",
    "企业新增一条生产线，计划明年扩产。",
)


# ------------------------------------------------------------------ visits
# The random choices of one visit are drawn in a fixed order (roles, the visit itself, then each
# role's part in the order below): the demo data set depends on it.
def _visit_roles(rng: random.Random, case: Referral, open_apps: list, *, first: bool) -> list:
    """The roles a visit plays: what the case asked for, now and then a little more."""
    roles = ["information"] if first else []
    if case.need_financing and (not open_apps or rng.random() < 0.8):
        roles.append("financing")
    if case.need_policy or rng.random() < 0.4:
        roles.append("policy")
    if case.need_guidance or rng.random() < 0.2:
        roles.append("guidance")
    return roles or ["policy"]


def _information_part(rng: random.Random) -> dict:
    """What the advisor learnt about the firm; now and then a risk signal."""
    risk = rng.random() < 0.03
    return {
        "note": rng.choice(_INFO).format(n=rng.randint(8, 120)),
        "risk_signal": risk,
        "risk_type": rng.choice(["illegal_fundraising", "illegal_deposit", "fraud"])
        if risk
        else None,
    }


def _next_step(rng: random.Random, app: FinancingApplication) -> dict:
    """An open application moves on: approved, then disbursed; one in ten is declined."""
    stage = "approved" if app.stage == "applied" else "disbursed"
    if rng.random() < 0.1:
        return {"application_id": app.id, "stage": "declined", "reason": "企业资质未达授信条件"}
    base = app.approved_amount_wan or app.amount_wan
    amount = (base * Decimal(rng.choice(["1", "1", "0.8"]))).quantize(Decimal("1"))
    return {"application_id": app.id, "stage": stage, "amount_wan": str(amount)}


def _new_application(rng: random.Random, advisor: User, case: Referral) -> dict:
    """A first application for the case's amount (or an invented one)."""
    return {
        "stage": "applied",
        "amount_wan": str(case.amount_wan or _amount(rng, 20, 500)),
        # Insurers' advisors arrange loans with a bank (the local one here).
        "institution": advisor.org.code if advisor.org.type == "bank" else "JZRCB",
        "product": rng.choice(["科创贷", "税易贷", "惠农e贷", "流动资金贷款"]),
        "term_months": rng.choice([6, 12, 24, 36]),
        "first_loan": rng.random() < 0.3,
        "unsecured": rng.random() < 0.5,
    }


def _demo_visit(rng: random.Random, advisor: User, case: Referral, day, *, first: bool, last: bool):
    """A visit through the same service the form and the API use."""
    from .services import financing as financing_service
    from .services import visits as visit_service

    open_apps = financing_service.open_applications(case.id)
    roles = _visit_roles(rng, case, open_apps, first=first)
    data = {
        "referral_id": case.id,
        "visited_on": day.isoformat(),
        "mode": rng.choice(["onsite", "onsite", "phone", "online", "event"]),
        "roles": roles,
        "summary": rng.choice(_SUMMARIES),
        "next_visit_on": None if last else (day + timedelta(days=rng.randint(7, 20))).isoformat(),
    }
    if "policy" in roles:
        tools = list(db.session.execute(select(PolicyTool.code).order_by(PolicyTool.id)).scalars())
        data["policies"] = rng.sample(tools, rng.randint(1, 2))
        data["policy_note"] = "向企业负责人讲解"
    if "guidance" in roles:
        data["guidance_topic"] = rng.choice(_TOPICS)
        data["guidance_advice"] = "建议规范财务核算，按月报送经营数据。"
    if "information" in roles:
        data["information"] = _information_part(rng)
    if "financing" in roles:
        data["financing"] = (
            _next_step(rng, open_apps[0]) if open_apps else _new_application(rng, advisor, case)
        )
    visit_service.log_visit(advisor, data)


# ------------------------------------------------------------------ referrals
@dataclass(frozen=True)
class _Cast:
    """The accounts the referral story needs."""

    bureaus: list[User]
    by_org: dict[int, User]  # each bureau's account by its organisation
    office: User  # the finance office account that assigns cases
    advisors: list[User]
    star: User  # the demo advisor people sign in as: gets a full workbench

    @classmethod
    def of(cls, users: dict[str, User]) -> _Cast:
        bureaus = [u for u in users.values() if u.role == "bureau"]
        return cls(
            bureaus=bureaus,
            by_org={b.org_id: b for b in bureaus},
            office=users["jrb"],
            advisors=[u for u in users.values() if u.role == "advisor"],
            star=users["zhangwei"],
        )


@dataclass(frozen=True)
class _Referred:
    """A case the seed created, and its backdated start."""

    bureau: User
    case: Referral
    age: int  # days since it was referred
    created_at: datetime


def _refer(rng: random.Random, firm: Enterprise, cast: _Cast) -> _Referred | None:
    """The firm referred by its bureau (now and then by a second one too); None when the
    service did not create a case."""
    from .services import referrals as svc

    bureau = cast.by_org.get(firm.registered_by_org_id) or rng.choice(cast.bureaus)
    needs = rng.sample(["financing", "policy", "guidance", "insurance"], rng.randint(1, 2))
    if rng.random() < 0.6 and "financing" not in needs:
        needs.append("financing")
    item = {
        "credit_code": firm.credit_code,
        "name": firm.name,
        "industry": firm.industry,
        "needs": needs,
        "amount_wan": str(_amount(rng, 20, 800)) if "financing" in needs else None,
        "purpose": rng.choice(["购置设备", "补充流动资金", "扩大产能", "技术改造", "订单备货"]),
    }
    result = svc.submit(bureau, [item], source=rng.choice(["form", "upload", "api"]))[0]
    if result.status != "created":
        return None
    case = db.session.get(Referral, result.referral_id)
    age = rng.randint(0, 60)
    created_at = utcnow() - timedelta(days=age, hours=rng.randint(0, 8))
    case.created_at = created_at
    if rng.random() < 0.08:
        other = rng.choice([b for b in cast.bureaus if b.org_id != bureau.org_id])
        svc.submit(other, [dict(item)], source="api")
    return _Referred(bureau, case, age, created_at)


def _resolve(rng: random.Random, advisor: User, referred: _Referred) -> None:
    """The advisor records the outcome; the bureau confirms it now and then."""
    from .services import financing as financing_service
    from .services import referrals as svc

    case = referred.case
    disbursed = financing_service.disbursed_total(case.id)
    if disbursed:
        result_kind, amount = "financed", disbursed
    else:
        result_kind = rng.choice(["policy_delivered", "no_need", "not_financed"])
        amount = None
    svc.record_outcome(advisor, case, result_kind, amount, "已对接" if amount else "已办结")
    if rng.random() < 0.4:
        svc.confirm_outcome(referred.bureau, case.id, rng.choice([4, 5, 5, 3]), "服务及时")


def _follow_case(rng: random.Random, cast: _Cast, cal, referred: _Referred, counts: Counter):
    """How far a case got: still in the inbox, assigned, visited, resolved."""
    from .services import referrals as svc

    if referred.age < 3 or rng.random() < 0.15:
        return  # still in the inbox
    case = referred.case
    advisor = cast.star if rng.random() < 0.3 else rng.choice(cast.advisors)
    svc.assign(cast.office, [case.id], advisor.username)
    counts["assigned"] += 1
    assigned_day = (referred.created_at + timedelta(days=rng.randint(0, 2))).date()
    case.assigned_at = referred.created_at + timedelta(days=1)
    case.first_contact_due = cal.add_workdays(assigned_day, svc.sla_days())
    if rng.random() < 0.25:
        return  # waiting for first contact (some of these are overdue)
    contact = min(cal.add_workdays(assigned_day, rng.randint(1, 7)), clock.today())
    days = _visit_days(rng, contact, clock.today())
    resolve = rng.random() >= 0.45
    for n, day in enumerate(days):
        _demo_visit(rng, advisor, case, day, first=n == 0, last=n == len(days) - 1 and resolve)
        counts["visits"] += 1
    if resolve:
        _resolve(rng, advisor, referred)
        counts["resolved"] += 1


def _backdate_visits(rng: random.Random) -> None:
    """Visits were logged on the day they happened, or a few days later (so most are past their
    edit window, as in life)."""
    for visit_id, day in db.session.execute(select(Visit.id, Visit.visited_on)).all():
        delay = rng.choice([0, 0, 0, 1, 1, 2, 3, 5])
        logged = datetime.combine(day, time(10, rng.randint(0, 59)), tzinfo=SHANGHAI)
        logged = min(logged + timedelta(days=delay), utcnow())
        db.session.execute(
            Visit.__table__.update()
            .where(Visit.id == visit_id)
            .values(
                created_at=logged.astimezone(UTC),
                log_delay_days=(logged.astimezone(SHANGHAI).date() - day).days,
            )
        )


def _backdate_timelines() -> None:
    """Timeline entries share the case's backdated start, so the story reads in order."""
    for case in db.session.execute(select(Referral)).scalars():
        db.session.execute(
            ReferralEvent.__table__.update()
            .where(ReferralEvent.referral_id == case.id, ReferralEvent.kind == "created")
            .values(at=case.created_at)
        )
        db.session.execute(
            ReferralBureau.__table__.update()
            .where(ReferralBureau.referral_id == case.id, ReferralBureau.org_id == case.org_id)
            .values(created_at=case.created_at)
        )


def _seed_referrals(rng: random.Random, users: dict[str, User]) -> Counter:
    """About half the firms referred by their bureau over the last two months, some co-referred;
    most assigned by the finance office, some contacted, some with an outcome, a few closed.
    Dates are spread backwards so the inbox, the service-level clock and the bureau's closed loop
    have something to show."""
    from .services import referrals as svc

    counts = Counter()
    cast = _Cast.of(users)
    firms = list(db.session.execute(select(Enterprise).order_by(Enterprise.id)).scalars())
    cal = svc.calendar()
    for firm in rng.sample(firms, len(firms) // 2):
        referred = _refer(rng, firm, cast)
        if referred is None:
            continue
        counts["referrals"] += 1
        _follow_case(rng, cast, cal, referred, counts)
    db.session.flush()
    _backdate_visits(rng)
    _backdate_timelines()
    return counts


def _seed_assessments() -> Counter:
    """The last two full months compiled, the older one published: advisors and liaisons have
    a result to read, the finance office a draft to review."""
    from .periods import month_of
    from .services import assessments

    db.session.flush()
    last = month_of(clock.today()).previous()
    assessments.compile_period(last.previous().key)
    assessments.publish(None, last.previous().key)
    assessments.compile_period(last.key)
    return Counter(assessments=2)


# ------------------------------------------------------------------ the seed
def _refuse_in_production() -> None:
    if current_app.config.get("PRODUCTION") and not current_app.config.get("DEMO_DATA"):
        raise DomainError(
            _("Under APP_CONFIG=production the demo data set is loaded only with DEMO_DATA=1.")
        )


def _seed_orgs(created: Counter) -> dict[str, Organisation]:
    """The city's organisations by code, reusing those that exist."""
    from .services.orgs import create_org, find_org

    orgs: dict[str, Organisation] = {}
    for code, name, type_, short in ORGS:
        orgs[code] = find_org(code)
        if orgs[code] is None:
            orgs[code] = create_org(code, name, type_, short)
            created["orgs"] += 1
    return orgs


class _Accounts:
    """The demo accounts by username: existing ones are kept, missing ones created."""

    def __init__(self, orgs: dict[str, Organisation], created: Counter) -> None:
        self.orgs = orgs
        self.created = created
        self.users: dict[str, User] = {}

    def add(self, username: str, role: str, display: str, org_code: str | None, phone):
        """The account, or None when it existed already (then it is left as it is)."""
        from .services.users import create_user, find_user

        found = find_user(username)
        if found is not None:
            self.users[username] = found
            return None
        self.users[username] = create_user(
            username=username,
            password=DEMO_PASSWORD,
            role=role,
            org=self.orgs[org_code] if org_code else None,
            display_name=display,
            phone=phone,
        )
        self.created["users"] += 1
        return self.users[username]


def _advisor_profile(rng: random.Random, townships: dict[str, Township], org_code, title, note):
    """An advisor's capacity, specialties and townships (drawn even for an existing advisor, so
    the choices do not depend on what exists)."""
    pool = SPECIALTY_POOLS[org_code]
    return dict(
        title=title,
        capacity=rng.randint(8, 25),
        accepting=note is None,
        specialties=rng.sample(pool, rng.randint(1, min(3, len(pool)))),
        township_ids=[t.id for t in rng.sample(list(townships.values()), rng.randint(1, 3))],
        note=note,
    )


def _seed_people(
    rng: random.Random, orgs: dict[str, Organisation], townships, created: Counter
) -> dict[str, User]:
    """The administrator, the staff of every organisation and the advisors with profiles."""
    from .services.users import update_advisor_profile

    accounts = _Accounts(orgs, created)
    with _one_hash_for(DEMO_PASSWORD):
        accounts.add("admin", "admin", "系统管理员", None, None)
        for username, display, role, org_code in STAFF:
            accounts.add(username, role, display, org_code, _mobile(rng))
        for username, display, org_code, title, pause_note in ADVISORS:
            advisor = accounts.add(username, "advisor", display, org_code, _mobile(rng))
            profile = _advisor_profile(rng, townships, org_code, title, pause_note)
            if advisor is not None:
                update_advisor_profile(db.session.get(AdvisorProfile, advisor.id), **profile)
                created["advisors"] += 1
    return accounts.users


def _seed_firms(rng: random.Random, townships, users: dict[str, User]) -> int:
    """The 300 firms, each on its bureau's list; returns how many were new."""
    from .services.firms import register_firm

    firms = _firm_rows(rng, townships)
    codes = [data["credit_code"] for _b, data in firms]
    existing_codes = set(
        db.session.execute(
            select(Enterprise.credit_code).where(Enterprise.credit_code.in_(codes))
        ).scalars()
    )
    new = 0
    for bureau, data in firms:
        if data["credit_code"] in existing_codes:
            continue
        # The firm goes on that bureau's list (registered_by_org); the audit trail keeps whoever
        # runs the seed (``cli``, ``demo``) as the author, because that is who wrote the rows.
        register_firm(users[bureau], data)
        new += 1
    return new


def _summary(created: Counter) -> str:
    lines = [
        _("Demo city %(city)s (fictional), all data invented.", city="江州市"),
        _(
            "%(townships)s townships and streets, %(orgs)s organisations.",
            townships=created["townships"],
            orgs=created["orgs"],
        ),
        _(
            "%(users)s users including %(advisors)s advisors; every demo account uses the "
            "password %(password)s.",
            users=created["users"],
            advisors=created["advisors"],
            password=DEMO_PASSWORD,
        ),
        _(
            "%(firms)s firms on the bureaus' lists, %(tools)s policy tools in the catalogue.",
            firms=created["firms"],
            tools=created["tools"],
        ),
        _(
            "%(referrals)s referrals: %(assigned)s assigned to advisors, %(resolved)s with an "
            "outcome; %(visits)s visits logged.",
            referrals=created["referrals"],
            assigned=created["assigned"],
            resolved=created["resolved"],
            visits=created["visits"],
        ),
    ]
    return "\n".join(lines)


def seed_demo() -> str:
    """Load the demo data set into the current session (flushed, not committed) and return a
    short summary for the console.

    Rows that already exist (same township or organisation code, username, credit code) are
    kept as they are and not created again, so ``demo seed --force`` on a database that has
    some of them adds only what is missing. The random choices do not depend on what exists.

    Under APP_CONFIG=production it refuses (DomainError) unless DEMO_DATA=1 was set.
    """
    _refuse_in_production()
    from .services.policies import seed_catalogue

    rng = random.Random(SEED)  # one generator, drawn from in the order of the steps below
    created = Counter()
    townships, created["townships"] = _townships()
    orgs = _seed_orgs(created)
    users = _seed_people(rng, orgs, townships, created)
    created["firms"] = _seed_firms(rng, townships, users)
    seed_catalogue()  # `db upgrade` normally added it already (advisors/reference.py)
    db.session.flush()
    created["tools"] = db.session.scalar(select(func.count()).select_from(PolicyTool))
    if created["firms"]:
        created.update(_seed_referrals(rng, users))
        created.update(_seed_assessments())
    return _summary(created)


__all__ = ["DEMO_LOGINS", "DEMO_PASSWORD", "database_is_empty", "seed_demo"]
