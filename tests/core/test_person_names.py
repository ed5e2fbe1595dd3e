"""Names in messages: 张先生 / 张女士 / 张伟 and Mr Zhang / Ms Zhang / Wei Zhang by the documented
rule; compound surnames; Latin names; the template context renders them per language."""

import pytest

from clm.channels.templates import MessageTemplate, render
from clm.core.person_names import display_name, salutation, split_chinese_name

CASES = [
    # first, last, gender, zh salutation, en salutation, zh display, en display
    ("伟", "张", "male", "张先生", "Mr Zhang", "张伟", "Wei Zhang"),
    ("芳", "王", "female", "王女士", "Ms Wang", "王芳", "Fang Wang"),
    ("伟", "张", None, "张伟", "Wei Zhang", "张伟", "Wei Zhang"),
    ("娜娜", "欧阳", "女", "欧阳女士", "Ms Ouyang", "欧阳娜娜", "Nana Ouyang"),
    ("欧阳娜娜", None, "f", "欧阳女士", "Ms Ouyang", "欧阳娜娜", "Nana Ouyang"),  # one field, split
    ("司马光", None, None, "司马光", "Guang Sima", "司马光", "Guang Sima"),
    ("小贤", "曾", "男", "曾先生", "Mr Zeng", "曾小贤", "Xiaoxian Zeng"),  # a surname's own reading
    ("Ann", "Lee", "female", "Lee女士", "Ms Lee", "Ann Lee", "Ann Lee"),
    ("Ann", "Lee", None, "Ann Lee", "Ann Lee", "Ann Lee", "Ann Lee"),
    (None, None, "male", "", "", "", ""),
]


@pytest.mark.parametrize(("first", "last", "gender", "zh", "en", "zh_name", "en_name"), CASES)
def test_salutation_and_display_name_by_the_rule(first, last, gender, zh, en, zh_name, en_name):
    assert salutation(first, last, gender, "zh") == zh
    assert salutation(first, last, gender, "en") == en
    assert display_name(first, last, "zh") == zh_name
    assert display_name(first, last, "en") == en_name


def test_compound_surnames_take_two_characters_others_one():
    assert split_chinese_name("诸葛亮") == ("诸葛", "亮")
    assert split_chinese_name("上官婉儿") == ("上官", "婉儿")
    assert split_chinese_name("王小明") == ("王", "小明")
    assert split_chinese_name("欧阳") == ("欧", "阳")  # two characters: a surname and a given name


def test_a_template_greets_in_its_own_language():
    template = MessageTemplate.model_validate(
        {
            "name": "hello",
            "channel": "email",
            "subject": {"zh": "{{ customer.salutation }}，您好", "en": "Hello {{ customer.salutation }}"},
            "text": {
                "zh": "{{ customer.display_name }}，中秋快乐！",
                "en": "Happy Mid-Autumn, {{ customer.display_name }}!",
            },
        }
    )
    customer = {"first_name": "伟", "last_name": "张", "gender": "male"}
    zh = render(template, {"customer": customer}, "zh")
    en = render(template, {"customer": customer}, "en")
    assert (zh.subject, zh.text) == ("张先生，您好", "张伟，中秋快乐！")
    assert (en.subject, en.text) == ("Hello Mr Zhang", "Happy Mid-Autumn, Wei Zhang!")
