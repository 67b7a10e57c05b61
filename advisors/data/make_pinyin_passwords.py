"""Generate ``pinyin_passwords.txt``: passwords Chinese users pick often, built from pinyin.

    python advisors/data/make_pinyin_passwords.py        # rewrites the file next to this script

Nothing here is copied from a leaked list: the words below are the common surnames and
given-name syllables of Mandarin in pinyin, a few romantic and patriotic phrases, work words of
a finance office, and keyboard walks, combined with the digit suffixes people add (123, 520 "I
love you", 1314 "for ever", 888 and 666 "luck", birth years). Only passwords that the length
rule would otherwise let through (8 characters or more) are written, lower case, one per line,
sorted, so a regenerated file diffs cleanly. ``advisors/passwords.py`` reads it together with
zxcvbn's English frequency list.
"""

from __future__ import annotations

from itertools import product
from pathlib import Path

OUT = Path(__file__).resolve().parent / "pinyin_passwords.txt"
MIN_LENGTH = 8  # advisors.passwords.MIN_LENGTH; shorter ones are refused by length anyway

# The most frequent surnames, roughly in order of frequency (the first ones combine with more).
SURNAMES = """
wang li zhang liu chen yang huang zhao wu zhou xu sun ma zhu hu guo he gao lin luo zheng liang
xie song tang han feng deng cao peng zeng xiao tian dong yuan pan yu jiang cai du ye cheng wei
su lu ding ren shen yao cui zhong tan fan jin shi liao jia xia fu fang bai zou meng xiong qin
qiu hou yin xue yan duan lei long tao gu mao hao gong shao wan qian dai mo kong xiang chang kang
yi qi lv niu wen ou ouyang situ shangguan zhuge murong
""".split()

# Common single given-name syllables.
GIVEN = """
wei fang na min jing li qiang lei jun yang yong yan jie juan tao ming chao xiu ying hua hui
ping gang bin hong lin xin yu feng jian hao peng dan ling qing yi fei ning bo kai long tian rui
xuan zhen zhi guo hai dong liang bing mei lan xia yun jia xiang kun wen wu chen cheng xue lu
shan sheng yue yuan qi zi han ting xiao le an ke song fan jin
""".split()

# Common two-syllable given names (and pet names).
GIVEN_DOUBLE = """
jianguo jianhua jianjun jianping jianming jianxin guoqiang guohua guoping zhiqiang zhiyong
zhigang zhihua zhiming xiaoming xiaohong xiaoli xiaoyan xiaojun xiaolong xiaomei xiaoyu
xiaofeng xiaodong xiaohua xiaojing haiyan haitao hailong haibo haiyang lihua lijun liping
lili yanyan jingjing tingting lingling feifei xinyi zihan zixuan yuxuan haoran yuhang junjie
wenjie mingming dongdong weiwei leilei huanhuan yangyang shanshan xuemei yumei guilan
xiuying xiulan fengying yuzhen shuying chunmei dandan qianqian jiajia yuting yuqi ziyi
jiahao jiayi xinyu yifan yuchen haoyu zhihao mingyu chunhua qiuyue xiaoqing wenjing
""".split()

# Phrases and words, used alone and with the suffixes.
WORDS = """
woaini woaini1314 woaini520 woaini521 aini aini1314 aini520 woainia woaiwojia woaimama
woaibaba woaini1 iloveyou wozhiaini yongyuan yongyuanaini yishengyishi zhongguo
zhongguoren woaizhongguo zhonghua zhonghuarenmin beijing shanghai guangzhou shenzhen
tianjin chongqing hangzhou nanjing wuhan chengdu xian suzhou jiangsu zhejiang shandong
nihao nihaoma xiexie zaijian haha hehe hahaha xixi heihei laopo laogong baobei qinai
qinaide xiaobao xiaobaobei wodemima mima mimamima mimashi gaosuni buzhidao wangjile
suibian kaixin kuaile kaixinkuaile xingfu pingan pingan888 fuqi facai gongxifacai
jiayou jiayouba fendou nuli xuexi gongzuo tiantianxiangshang tiantian shangxin
guanliyuan guanli yonghu denglu zhanghao kouling jinrong jinrongban jinrongguwen guwen
yinhang baoxian renmin renminyinhang caizheng zhengfu bangongshi bangong gongsi qiye
xiaowei chanye fuwu zhanghu dianhua shouji weixin qqmima qq123456 taobao zhifubao
diannao wangluo hulianwang shuju xitong ceshi test ceshi123 jiangzhou
""".split()

# Number-only favourites: 5201314 ("I love you for ever"), 1314520, lucky and repeated digits.
NUMBERS = """
5201314 1314520 52013140 5211314 1314521 520520520 13145200 52013141314 147258369 159357
741852963 963852741 258369147 88888888 66666666 66668888 88886666 168168168 518518518
11223344 12344321 1234554321 12341234 123123123 123321123 147147147 520131400
""".split()

# Keyboard walks.
WALKS = """
qwer asdf zxcv qwerty asdfgh zxcvbn qwertyui asdfghjk zxcvbnm qweasd qweasdzxc qazwsx
qazwsxedc 1qaz2wsx 1qaz2wsx3edc zaq12wsx qwe123 asd123 zxc123 qwer1234 asdf1234 zxcv1234
1234qwer 1234asdf 123qwe 123asd 123zxc qweqwe asdasd zxczxc poiuytre lkjhgfds mnbvcxz
""".split()

# What people put after a name or word.
SUFFIXES = ["", "1", "12", "123", "1234", "123456", "520", "521", "1314", "888", "666", "88"]
SHORT_SUFFIXES = ["", "123"]
YEARS = [str(y) for y in range(1970, 2006)]


def names() -> tuple[list[str], list[str], list[str]]:
    """(most frequent names, frequent names, other names): surname + given name."""
    top = [s + g for s, g in product(SURNAMES[:20], GIVEN[:20])]
    frequent = [s + g for s, g in product(SURNAMES[:40], GIVEN[:40])]
    frequent += [s + d for s, d in product(SURNAMES[:20], GIVEN_DOUBLE[:30])]
    others = [s + g for s, g in product(SURNAMES, GIVEN)]
    others += [s + d for s, d in product(SURNAMES[:60], GIVEN_DOUBLE)]
    others += GIVEN_DOUBLE + [g + g for g in GIVEN]  # pet names: weiwei, lili
    return top, frequent, others


def generate() -> list[str]:
    top, frequent, others = names()
    found: set[str] = set()
    for word in top:
        found.update(word + year for year in YEARS)
        found.update(word + year[2:] for year in YEARS)  # zhangwei85
    for word in frequent:
        found.update(word + suffix for suffix in SUFFIXES)
    for word in others:
        found.update(word + suffix for suffix in SHORT_SUFFIXES)
    for word in WORDS + WALKS:
        found.update(word + suffix for suffix in SUFFIXES)
        found.update(word + "." + suffix for suffix in SUFFIXES if suffix)
        found.update(word + year for year in YEARS[-25:])
    for a, b in product(WALKS, WALKS):
        if a != b and len(a) <= 6 and len(b) <= 6:
            found.add(a + b)  # qweasd + zxc
    found.update(NUMBERS)
    found.update(n + n for n in ("520", "1314", "5201314", "888", "666", "123"))
    return sorted(word for word in found if len(word) >= MIN_LENGTH)


def main() -> None:
    words = generate()
    OUT.write_text("\n".join(words) + "\n", encoding="ascii")
    print(f"{len(words)} passwords written to {OUT}")


if __name__ == "__main__":
    main()
